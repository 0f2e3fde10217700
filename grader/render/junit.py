"""JUnit XML for CI (valid under pytest's junit-10.xsd): one testsuite, one testcase per test shown."""

import xml.etree.ElementTree as ET

from grader.render.common import fraction, points, shown_tests
from grader.render.escape import xml_safe
from grader.results import PASSED, SHOWN_BEFORE_DUE_DATE

SUITE = "lesson6"                      # JUnit testsuite name and classname prefix


def to_junit(results, shown=SHOWN_BEFORE_DUE_DATE):
    """Render JUnit XML (valid under pytest's junit-10.xsd): one testsuite, one testcase per test shown.

    A test's points are in its name ("(3 points)", stable across runs) and its outcome ("0/3 points",
    in the failure message and the testcase's system-out); its time is the test's own where known.
    """
    tests, not_shown = shown_tests(results, shown)
    failures = sum(test.status != PASSED for test in tests)
    suite = ET.Element("testsuite", name=SUITE, tests=str(len(tests)), failures=str(failures),
                       errors="0", skipped="0", time=f"{results.execution_time:.3f}")
    properties = ET.SubElement(suite, "properties")
    score = sum(test.score for test in tests)
    max_score = sum(test.max_score for test in tests if not test.bonus)  # the bonus comes on top
    for name, value in (("submission", results.submission), ("score", points(score)),
                        ("max_score", points(max_score)), ("status", results.status)):
        ET.SubElement(properties, "property", name=name, value=xml_safe(value))
    for note in results.notes + ([not_shown] if not_shown else []):
        ET.SubElement(properties, "property", name="note", value=xml_safe(str(note)))
    for test in tests:
        attributes = {"classname": f"{SUITE}.{test.part}",
                      "name": xml_safe(f"{test.name} ({points(test.max_score)} points)")}
        if test.seconds is not None:
            attributes["time"] = f"{test.seconds:.3f}"
        case = ET.SubElement(suite, "testcase", attributes)
        outcome = f"{fraction(test.score, test.max_score)} points"
        if test.status != PASSED:
            output = test.output.strip() or "failed"
            failure = ET.SubElement(case, "failure", type="failed",
                                    message=xml_safe(f"{outcome}: {output.splitlines()[0]}"))
            failure.text = xml_safe(test.output or "failed")
        ET.SubElement(case, "system-out").text = outcome
    if results.probe_output:
        ET.SubElement(suite, "system-out").text = xml_safe(results.probe_output)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
