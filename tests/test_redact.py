from jiritsu import redact


def test_registered_secret_is_masked_everywhere_in_nested_data() -> None:
    redact.register_secret("sk-live-abcdef123456")
    redact.register_secret("sk-live-abc")  # a prefix of another secret: longest match wins
    text = "key=sk-live-abcdef123456 other=sk-live-abc"
    assert redact.redact(text) == "key=*** other=***"
    nested = {"a": ["x sk-live-abc y", 3], "sk-live-abc": "k"}
    assert redact.redact_obj(nested) == {"a": ["x *** y", 3], "***": "k"}


def test_short_or_empty_values_are_not_registered() -> None:
    redact.register_secret("")
    redact.register_secret(None)
    redact.register_secret("abc")
    assert redact.redact("abc is a word") == "abc is a word"
