"""``dirname``, ``path_join`` and ``path_split`` (velociraptor ``vql/functions/paths.go``): the
path is parsed into an `OSPath` by path type (``sep='\\\\'`` means windows, else generic, as on a
server not running on Windows) with `functions_paths`' parsers."""

from __future__ import annotations

from typing import Any

from velonb.emulator.vql import protocols as P
from velonb.emulator.vql.ospath import OSPath
from velonb.emulator.vql.registry import Arg, VQLCallError, function
from velonb.emulator.vql.scope import Scope


def parse_path(path: object, sep: str, path_type: str) -> OSPath:
    """functions.parsePath: an OSPath as is, a string parsed; raises VQLCallError."""
    if isinstance(path, OSPath):
        return path
    if isinstance(path, str):
        if not path_type:
            path_type = "windows" if sep == "\\" else "generic"
        return OSPath.parse(path, path_type)
    raise VQLCallError(f"Path should be an OSPath or string, not {P.go_type_name(path)}")


@function("dirname", Arg("path", required=True), Arg("sep", "str"), Arg("path_type", "str"),
          error_value=False)
def dirname(scope: Scope, args: dict[str, Any]) -> object:
    """The directory of a path (an OSPath without its last component)."""
    return parse_path(args["path"], args.get("sep", ""), args.get("path_type", "")).dirname()


@function("path_join", Arg("components", "list", required=True), Arg("sep", "str"),
          Arg("path_type", "str"), error_value=False)
def path_join(scope: Scope, args: dict[str, Any]) -> object:
    """A path of all the components (each one is parsed as a path itself); the last one's
    path type and pathspec are kept."""
    sep: str = args.get("sep", "")
    path_type: str = args.get("path_type", "")
    components: list[str] = []
    last: OSPath | None = None
    for item in args["components"]:
        last = parse_path(item, sep, path_type)
        components.extend(last.components)
    if last is None:
        last = parse_path("", sep, path_type)
    return OSPath(components, last.path_type, dict(last.spec))


@function("path_split", Arg("path", required=True), Arg("path_type", "str"), error_value=[])
def path_split(scope: Scope, args: dict[str, Any]) -> object:
    """The components of a path (NULL when the path type's parser gives none)."""
    try:
        parsed = parse_path(args["path"], "", args.get("path_type", ""))
    except VQLCallError as err:
        scope.log(f"path_split: {err}")
        return False
    return None if parsed.nil_components else list(parsed.components)
