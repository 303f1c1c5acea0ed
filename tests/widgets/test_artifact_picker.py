"""ArtifactPicker: filter, description, a typed parameter form, values as collect() takes them."""

from __future__ import annotations

import pytest

from velonb.widgets import ArtifactPicker


def test_lists_client_artifacts_and_filters_by_name_and_description(conn):
    picker = ArtifactPicker(conn)
    names = list(picker.list.options)
    assert "Windows.System.Pslist" in names and "Generic.Client.Info" in names
    assert not any(n.startswith("Server.") for n in names)  # type="client"
    picker.filter_box.value = "pslist"
    assert set(picker.list.options) == {"Windows.System.Pslist", "Linux.Sys.Pslist"}
    picker.filter_box.value = "running processes"  # words of the description
    assert "Windows.System.Pslist" in picker.list.options
    assert "2 of" in picker.count.value or "1 of" in picker.count.value
    picker.filter_box.value = "no such words anywhere"
    assert picker.list.options == ()
    assert set(ArtifactPicker(conn, "server", remember=False).catalog["type"]) == {"server"}


def test_choosing_shows_description_and_builds_the_form(conn):
    picker = ArtifactPicker(conn)
    picker.list.value = "Windows.Search.FileFinder"
    assert picker.artifact == "Windows.Search.FileFinder"
    assert "Finds files by glob" in picker.description.value
    kinds = {name: type(f.input).__name__ for name, f in picker.fields.items()}
    assert kinds["Glob"] == "Text"
    assert kinds["SearchFilesGlobTable"] == "Textarea"  # csv
    assert kinds["Accessor"] == "Dropdown"  # choices
    assert kinds["YaraRule"] == "Textarea"
    assert kinds["Upload_File"] == "Checkbox"  # bool
    assert kinds["VSS_MAX_AGE_DAYS"] == "Text"  # int, checked as typed
    assert kinds["MoreRecentThan"] == "Text"  # timestamp
    fields = picker.fields
    assert fields["Accessor"].input.value == "auto"
    assert list(fields["Accessor"].input.options)[:2] == ["auto", "registry"]
    assert fields["Upload_File"].input.value is False
    assert fields["SearchFilesGlobTable"].input.value.startswith("Glob\n")
    assert "A single glob to search for." in fields["Glob"].row.children[1].children[1].value
    assert picker.value == ("Windows.Search.FileFinder", {})  # defaults: nothing to send
    assert picker.valid and picker.errors == {}


def test_value_holds_changed_parameters_as_python_values(conn):
    picker = ArtifactPicker(conn, artifact="Windows.Search.FileFinder")
    picker.fields["Glob"].input.value = "C:/Users/*/Downloads/*.exe"
    picker.fields["Upload_File"].input.value = True
    picker.fields["Accessor"].input.value = "ntfs"
    picker.fields["VSS_MAX_AGE_DAYS"].input.value = "7"
    picker.fields["MoreRecentThan"].input.value = "2026-01-31T12:00:00Z"
    artifact, params = picker.value
    assert artifact == "Windows.Search.FileFinder"
    assert params == {"Glob": "C:/Users/*/Downloads/*.exe", "Upload_File": True,
                      "Accessor": "ntfs", "VSS_MAX_AGE_DAYS": 7,
                      "MoreRecentThan": "2026-01-31T12:00:00Z"}
    assert "✓ changed" in picker.fields["Glob"].message.value
    # Exactly what collect() takes: its own validation accepts them.
    assert conn.artifact(artifact).validate(params)["Upload_File"] == "Y"
    picker.fields["Upload_File"].input.value = False  # back to the default: not sent
    assert "Upload_File" not in picker.parameters


@pytest.mark.parametrize(("name", "text", "message"), [
    ("VSS_MAX_AGE_DAYS", "seven", "not a whole number"),
    ("MoreRecentThan", "last tuesday-ish", "is not a time"),
    ("SearchFilesGlobTable", "Glob,Other\nonly-one", "different number of columns"),
    ("SearchFilesGlobTable", "", None),
])
def test_invalid_input_gets_a_message_next_to_the_field(conn, name, text, message):
    picker = ArtifactPicker(conn, artifact="Windows.Search.FileFinder")
    picker.fields[name].input.value = text
    if message is None:
        assert name not in picker.errors
        return
    assert message in picker.errors[name]
    assert not picker.valid
    assert "velonb-error" in picker.fields[name].message.value
    assert message in picker.fields[name].message.value
    assert f"invalid {name}" in picker.summary()


def test_regex_parameters_are_checked(conn):
    picker = ArtifactPicker(conn, artifact="Windows.System.Pslist")
    picker.set_parameter("ProcessRegex", "(powershell")
    assert "not a valid regex" in picker.errors["ProcessRegex"]
    picker.set_parameter("ProcessRegex", "(?i)powershell|cmd")
    assert picker.errors == {}
    assert picker.value == ("Windows.System.Pslist", {"ProcessRegex": "(?i)powershell|cmd"})


def test_parameters_can_be_set_and_unknown_names_are_refused(conn):
    picker = ArtifactPicker(conn)
    picker.value = ("Windows.Search.FileFinder", {"Glob": "C:/x/*", "Upload_File": "Y"})
    assert picker.parameters == {"Glob": "C:/x/*", "Upload_File": True}
    picker.parameters = {"Accessor": "file"}  # the others go back to their defaults
    assert picker.parameters == {"Accessor": "file"}
    with pytest.raises(KeyError, match="no parameter 'Globb'"):
        picker.set_parameter("Globb", "x")
    with pytest.raises(ValueError, match="not one of the choices"):
        picker.set_parameter("Accessor", "magic")


def test_json_and_multiline_parameters(conn):
    from velonb.fleet_model import ArtifactInfo, ArtifactParameter
    from velonb.widgets.form import build_fields

    info = ArtifactInfo(name="Custom.Test", type="client", parameters=[
        ArtifactParameter("Config", "json", "{}"),
        ArtifactParameter("Names", "json_array", "[]"),
        ArtifactParameter("Script", "", "line one\nline two\n"),
        ArtifactParameter("Level", "choices", "", choices=["low", "high"]),
        ArtifactParameter("Secret", "hidden", "x"),
    ])
    fields = {f.name: f for f in build_fields(info, lambda: None)}
    assert "Secret" not in fields
    assert type(fields["Config"].input).__name__ == "Textarea"
    assert type(fields["Script"].input).__name__ == "Textarea"  # a multi-line default
    assert fields["Level"].input.value == "low"
    fields["Config"].input.value = "{not json"
    assert "not valid JSON" in fields["Config"].error()
    fields["Names"].input.value = '{"a": 1}'
    assert "JSON array" in fields["Names"].error()
    fields["Names"].input.value = '["a", "b"]'
    assert fields["Names"].error() is None and fields["Names"].changed()


def test_unknown_artifact_is_refused_with_suggestions(conn):
    picker = ArtifactPicker(conn)
    from velonb.fleet_errors import UnknownArtifactError

    with pytest.raises(UnknownArtifactError, match=r"Windows\.System\.Pslist"):
        picker.artifact = "Windows.System.PsList2"


def test_rerunning_the_cell_keeps_filter_artifact_and_parameters(conn):
    first = ArtifactPicker(conn)
    first.filter_box.value = "pslist"
    first.list.value = "Windows.System.Pslist"
    first.fields["ProcessRegex"].input.value = "powershell"
    first.fields["UseTracker"].input.value = True
    again = ArtifactPicker(conn)
    assert again.filter_box.value == "pslist"
    assert again.value == ("Windows.System.Pslist", {"ProcessRegex": "powershell",
                                                     "UseTracker": True})
    assert again.fields["ProcessRegex"].input.value == "powershell"
    assert ArtifactPicker(conn, remember=False).artifact is None


def test_text_fallback(conn):
    picker = ArtifactPicker(conn, artifact="Windows.System.Pslist",
                            parameters={"ProcessRegex": "cmd"})
    text = picker._repr_mimebundle_()["text/plain"]
    assert text.splitlines() == ["ArtifactPicker: Windows.System.Pslist",
                                 "  ProcessRegex = 'cmd'"]
    assert "no artifact chosen" in repr(ArtifactPicker(conn, remember=False))
