"""GitHub Classroom's grading reporter, re-implemented for the tests: what it prints, and whether it fails the job.

A re-implementation of classroom-resources/autograding-grading-reporter at tag v1
(commit d13b5912daf5042ac1b71bc38bdb4a6bcd61d8ca), read from src/main.js, src/console-results.js,
src/aggregate-results.js, src/notify-classroom.js and src/helpers/test-helpers.js (dist/main.js is their bundle).
Same formulas and the same branches, run with node so numbers print as JavaScript prints them; colours are left out,
the cli-table3 table is printed as "name | score | max" rows, and @actions/core's notice/setFailed as the workflow
commands they write.
"""

import json
import os
import shutil
import subprocess

NODE = shutil.which("node")

REPORTER_JS = r"""
const notice = (text, title) => console.log(`::notice title=${title}::${text}`);          // core.notice
const setFailed = (text) => { console.log(`::error::${text}`); process.exitCode = 1; };  // core.setFailed

// src/helpers/test-helpers.js
const getMaxScoreForTest = (runnerResult) => runnerResult.max_score || 0;
const getTestScore = (runnerResult) => {
  const { tests } = runnerResult;
  const score = runnerResult.tests.reduce((acc, { status }) => (status === "pass" ? acc + 1 : acc), 0);
  return (score / tests.length) * (getMaxScoreForTest(runnerResult) || 0);
};

// src/aggregate-results.js
function AggregateResults(runnerResults) {
  const rows = runnerResults.map(({ runner, results }) => ({
    name: runner.trim(), score: getTestScore(results), maxScore: getMaxScoreForTest(results) }));
  rows.forEach((row) => console.log(`${row.name} | ${row.score} | ${row.maxScore}`));
  const totalTestScores = rows.reduce((acc, curr) => acc + curr.score, 0);
  const totalMaxScores = rows.reduce((acc, curr) => acc + curr.maxScore, 0);
  console.log(`Total:  | ${totalTestScores} | ${totalMaxScores}`);
}

// src/console-results.js
function ConsoleResults(runnerResults) {
  let grandTotalPassedTests = 0;
  let grandTotalTests = 0;
  runnerResults.forEach(({ runner, results }) => {
    const maxScore = getMaxScoreForTest(results);
    const score = getTestScore(results);
    console.log(`Processing: ${runner}`);
    let passedTests = 0;
    results.tests.forEach((test) => {
      if (test.status === "pass") {
        passedTests += 1;
        console.log(test.line_no !== 0 ? `✅ ${test.name} - line ${test.line_no}` : `✅ ${test.name}`);
      } else if (test.status === "error") {
        console.log(`Error: ${test.message || `Failed to run test '${test.name}'`}`);
      } else {
        console.log(test.line_no !== 0 ? `❌ ${test.name} - line ${test.line_no}` : `❌ ${test.name}`);
      }
      if (test.test_code) console.log(`Test code:\n${test.test_code}\n`);
    });
    grandTotalPassedTests += passedTests;
    grandTotalTests += results.tests.length;
    if (maxScore !== 0) console.log(`Total points for ${runner}: ${score.toFixed(2)}/${maxScore}`);
  });
  console.log("Test runner summary");
  AggregateResults(runnerResults);
  console.log(`🏆 Grand total tests passed: ${grandTotalPassedTests}/${grandTotalTests}`);
}

// src/notify-classroom.js: the two annotations GitHub Classroom reads the points from.
function NotifyClassroom(runnerResults) {
  const { totalPoints, maxPoints } = runnerResults.reduce((acc, { results }) => {
    if (!results.max_score) return acc;
    acc.maxPoints += results.max_score;
    results.tests.forEach(({ score }) => { acc.totalPoints += score; });
    return acc;
  }, { totalPoints: 0, maxPoints: 0 });
  if (!maxPoints) return;
  notice(`Points ${totalPoints}/${maxPoints}`, "Autograding complete");
  notice(JSON.stringify({ totalPoints, maxPoints }), "Autograding report");
}

// src/main.js
try {
  const runnerResults = (process.env.INPUT_RUNNERS || "").trim().split(",").map((runner) => {
    const encodedResults = process.env[`${runner.trim().toUpperCase()}_RESULTS`];
    const json = Buffer.from(encodedResults, "base64").toString("utf-8");
    return { runner, results: JSON.parse(json) };
  });
  ConsoleResults(runnerResults);
  NotifyClassroom(runnerResults);
  if (runnerResults.some((r) => r.results.status === "fail")) {
    setFailed("Some tests failed.");
  } else if (runnerResults.some((r) => r.results.status === "error")) {
    setFailed("Some tests errored.");
  }
} catch (error) {
  console.error(error.message);
  setFailed(error.message);
}
"""


def run_reporter(runners, outputs, tmp_path):
    """Run the reporter on step outputs {runner: base64 result}; return (exit code, what it printed)."""
    script = tmp_path / "reporter.js"
    script.write_text(REPORTER_JS, encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", ""), "INPUT_RUNNERS": ",".join(runners)}
    env.update({f"{runner.upper()}_RESULTS": outputs[runner] for runner in runners})
    done = subprocess.run([NODE, str(script)], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    return done.returncode, done.stdout + done.stderr


def annotation_points(printed):
    """Return (totalPoints, maxPoints) from the "Autograding report" annotation, which Classroom reads."""
    line = next(line for line in printed.splitlines() if line.startswith("::notice title=Autograding report::"))
    report = json.loads(line.split("::", 2)[2])
    return report["totalPoints"], report["maxPoints"]
