"""Words for counts in the kit's messages: "1 worker", "2 workers"."""


def plural(count, noun, plural_noun=None):
    """Return the count and the noun, singular for exactly one: plural(1, "student") == "1 student"."""
    word = noun if count == 1 else plural_noun or noun + "s"
    return f"{count:,} {word}" if isinstance(count, int) else f"{count} {word}"
