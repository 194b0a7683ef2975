"""A virtual file system held in the state (never the real disk): directories, text files, search."""
from __future__ import annotations

import fnmatch
import posixpath
import random
import re
from typing import Any, Optional

from .. import register
from ..base import Env, Rule, ToolFailure, tool

_PROJECTS = ["report", "thesis", "budget", "website", "garden", "trip"]
_SENTENCES = ["Quarterly revenue grew 8% while costs stayed flat.", "The team shipped two releases on time.",
              "Next steps include hiring a designer.", "Review the vendor contracts before renewal in May.",
              "Budget for the offsite is 4,500 dollars.", "Call the landlord about the heating.",
              "Water the tomatoes every second day.", "Flight to Lisbon leaves at 7:40 on Friday.",
              "Remember to back up the photos to the external drive.", "Draft the intro and send it to Maria."]
# chosen: every C0/C1 control character, tab, newline and carriage return included. The base `Env` lets those
# three through (text arguments such as `content` legitimately hold them), but no path of this sandbox does:
# a file or folder whose name holds a line break cannot be listed or named back in one line.
_PATH_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DIRS = ["/home/user", "/home/user/documents", "/home/user/photos", "/home/user/projects", "/home/user/music",
         "/home/user/documents/work", "/home/user/projects/website", "/tmp"]


def _text(rng: random.Random, n: int) -> str:
    return "\n".join(rng.sample(_SENTENCES, min(n, len(_SENTENCES))))


@register
class FileSystemEnv(Env):
    domain = "file_system"
    NONEMPTY_STRINGS = True  # names, addresses, texts and ids of this domain are never blank
    description = "A user's home directory: list, read, write, move, copy, delete and search text files."
    ENTITIES = {"file_path": "files[].path", "dir_path": "dirs[]"}
    VALUE_POOLS = {
        "content": ["Meeting moved to Thursday 10am.", "TODO: renew passport; call the plumber.",
                    "Shopping list: eggs, rice, olive oil, basil.", "Draft intro for the annual report."],
        # `path` of write_file (the only tool whose `path` consumes no entity): new files
        "path": ["/home/user/documents/notes.txt", "/home/user/todo.txt", "/tmp/scratch.md",
                 "/home/user/projects/ideas.md"],
        "directory_path": ["/home/user/archive", "/home/user/documents/taxes", "/home/user/projects/app",
                           "/tmp/build"],
        "pattern": ["*.txt", "*.md", "*report*", "*.csv"],
        "keyword": ["revenue", "team", "budget", "hiring", "landlord", "photos"],
        "overwrite": [True],
    }
    LONG_CONTEXT_KEYS = ["files"]

    @classmethod
    def sample_state(cls, rng: random.Random) -> dict[str, Any]:
        dirs = ["/", "/home"] + list(_DIRS)
        files = []
        seen = set()
        for _ in range(rng.randint(6, 10)):
            d = rng.choice(_DIRS)
            name = f"{rng.choice(_PROJECTS)}_{rng.randint(1, 99)}.{rng.choice(['txt', 'md', 'csv'])}"
            path = posixpath.join(d, name)
            if path in seen:
                continue
            seen.add(path)
            files.append({"path": path, "content": _text(rng, rng.randint(1, 5))})
        return {"dirs": dirs, "files": files}

    @classmethod
    def add_distractors(cls, state: dict[str, Any], rng: random.Random, n: int) -> dict[str, Any]:
        """Old log files under /var/log/archive: bulk that a listing of / or a search must wade through."""
        for d in ("/var", "/var/log", "/var/log/archive"):
            if d not in state["dirs"]:
                state["dirs"].append(d)
        taken = {f["path"] for f in state["files"]}
        added = 0
        while added < n:
            path = f"/var/log/archive/app-{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}-{rng.randint(0, 9999)}.log"
            if path in taken:
                continue
            taken.add(path)
            state["files"].append({"path": path, "content": _text(rng, rng.randint(1, 3))})
            added += 1
        return state

    # helpers -------------------------------------------------------------------------------
    @staticmethod
    def _norm(path: str) -> str:
        bad = _PATH_CONTROL.search(path)
        if bad:
            # chosen: checked here, where every path-taking tool (write, make_directory, move, copy, delete, read,
            # list, find, word_count) passes, so all refuse alike and before any state is touched; refused as
            # `invalid_arguments`, the kind the base gives other control characters (not a Rule: a schema
            # keyword would change the tool schemas the generators show)
            raise ToolFailure("invalid_arguments", f"path {path!r} contains the control character "
                                                   f"U+{ord(bad.group(0)):04X} at position {bad.start()}; "
                                                   "a path is one line of printable characters")
        if not path.startswith("/"):
            raise ToolFailure("invalid_request", f"path {path!r} must be absolute (start with /)")
        return posixpath.normpath(path)

    def _file(self, path: str) -> dict[str, Any]:
        p = self._norm(path)
        for f in self.state["files"]:
            if f["path"] == p:
                return f
        if p in self.state["dirs"]:
            raise ToolFailure("invalid_request", f"{p} is a directory, not a file")
        raise ToolFailure("not_found", f"no file at {p}")

    def _exists(self, p: str) -> bool:
        return p in self.state["dirs"] or any(f["path"] == p for f in self.state["files"])

    def _need_dir(self, p: str) -> None:
        if p not in self.state["dirs"]:
            raise ToolFailure("not_found", f"no directory at {p}")

    # tools ---------------------------------------------------------------------------------
    @tool(writes=False, consumes={"path": "dir_path"},
          produces={"file_path": "files[]", "dir_path": "directories[]"},
          phrases=["What is in the folder {path}?", "List the contents of {path}."])
    def list_directory(self, path: str) -> dict:
        """List the files and sub-directories directly inside a directory.

        Args:
            path: Absolute path of the directory, e.g. /home/user/documents.
        """
        p = self._norm(path)
        self._need_dir(p)
        files = sorted(f["path"] for f in self.state["files"] if posixpath.dirname(f["path"]) == p)
        dirs = sorted(d for d in self.state["dirs"] if d != p and posixpath.dirname(d) == p)
        return {"path": p, "files": files, "directories": dirs}

    @tool(writes=False, consumes={"path": "file_path"}, produces={"file_path": "path"},
          phrases=["Show me what {path} says.", "Open {path} and read it to me."])
    def read_file(self, path: str) -> dict:
        """Read the text content of a file.

        Args:
            path: Absolute path of the file.
        """
        f = self._file(path)
        return {"path": f["path"], "content": f["content"]}

    @tool(writes=True, produces={"file_path": "path"},
          # chosen: a text file of this sandbox is small; 100k characters keeps a tool message readable
          rules={"content": Rule(allow_empty=True, max_len=100_000)},
          phrases=["Create {path} with the text: {content}", "Write '{content}' into the file {path}."])
    def write_file(self, path: str, content: str, overwrite: bool = False) -> dict:
        """Create a text file, or replace its content when overwrite is true.

        Args:
            path: Absolute path of the file; its directory must exist.
            content: The text to write.
            overwrite: Replace the file if it already exists.
        """
        p = self._norm(path)
        self._need_dir(posixpath.dirname(p))
        if p in self.state["dirs"]:
            raise ToolFailure("conflict", f"{p} is a directory")
        for f in self.state["files"]:
            if f["path"] == p:
                if not overwrite:
                    raise ToolFailure("conflict", f"{p} already exists (set overwrite to replace it)")
                if f["content"] == content:
                    raise ToolFailure("conflict", f"{p} already has exactly this content")
                f["content"] = content
                return {"path": p, "bytes": len(content.encode()), "created": False}
        self.state["files"].append({"path": p, "content": content})
        return {"path": p, "bytes": len(content.encode()), "created": True}

    @tool(writes=True, produces={"dir_path": "path"},
          phrases=["Make a new folder {directory_path}.", "Create the directory {directory_path}."])
    def make_directory(self, directory_path: str) -> dict:
        """Create a directory (its parent must exist).

        Args:
            directory_path: Absolute path of the new directory.
        """
        p = self._norm(directory_path)
        if self._exists(p):
            raise ToolFailure("conflict", f"{p} already exists")
        self._need_dir(posixpath.dirname(p))
        self.state["dirs"].append(p)
        return {"path": p, "created": True}

    def _file_and_target(self, source: str, destination_dir: str) -> tuple[dict, str]:
        """The source file and its path inside `destination_dir` (move/copy keep the name; no overwrite)."""
        f = self._file(source)
        d = self._norm(destination_dir)
        self._need_dir(d)
        new = posixpath.join(d, posixpath.basename(f["path"]))
        if self._exists(new):
            raise ToolFailure("conflict", f"{new} already exists")
        return f, new

    @tool(writes=True, consumes={"source": "file_path", "destination_dir": "dir_path"},
          produces={"file_path": "path"},
          phrases=["Move {source} into {destination_dir}.", "Please put {source} in the folder {destination_dir}."])
    def move_file(self, source: str, destination_dir: str) -> dict:
        """Move a file into another directory, keeping its name.

        Args:
            source: Absolute path of the file to move.
            destination_dir: Absolute path of the target directory.
        """
        f, new = self._file_and_target(source, destination_dir)
        old = f["path"]
        f["path"] = new
        return {"from": old, "path": new}

    @tool(writes=True, consumes={"source": "file_path", "destination_dir": "dir_path"},
          produces={"file_path": "path"},
          phrases=["Copy {source} to {destination_dir}.", "Make a copy of {source} in {destination_dir}."])
    def copy_file(self, source: str, destination_dir: str) -> dict:
        """Copy a file into another directory, keeping its name.

        Args:
            source: Absolute path of the file to copy.
            destination_dir: Absolute path of the target directory.
        """
        f, new = self._file_and_target(source, destination_dir)
        self.state["files"].append({"path": new, "content": f["content"]})
        return {"from": f["path"], "path": new}

    @tool(writes=True, consumes={"path": "file_path"},
          phrases=["Delete the file {path}.", "Remove {path}, I don't need it anymore."])
    def delete_file(self, path: str) -> dict:
        """Delete a file.

        Args:
            path: Absolute path of the file.
        """
        f = self._file(path)
        self.state["files"].remove(f)
        return {"deleted": f["path"]}

    @tool(writes=False, consumes={"directory": "dir_path"}, produces={"file_path": "matches[]"},
          phrases=["Find files matching {pattern}.", "Search my files for names like {pattern}."])
    def find_files(self, pattern: str, directory: Optional[str] = None) -> dict:
        """Find files whose name matches a shell-style pattern, searching a directory tree.

        Args:
            pattern: Shell-style pattern for the file name, e.g. *.txt.
            directory: Absolute path of the directory to search under; the whole disk when omitted.
        """
        root = self._norm(directory) if directory else "/"
        if directory:
            self._need_dir(root)
        prefix = root.rstrip("/") + "/"
        hits = sorted(f["path"] for f in self.state["files"]
                      if f["path"].startswith(prefix) and fnmatch.fnmatch(posixpath.basename(f["path"]), pattern))
        return {"pattern": pattern, "matches": hits}

    @tool(writes=False, produces={"file_path": "matches[].path"},
          phrases=["Which files mention '{keyword}'?", "Search the contents of my files for {keyword}."])
    def grep_files(self, keyword: str) -> dict:
        """Find files whose content contains a keyword (case-insensitive).

        Args:
            keyword: The text to look for.
        """
        k = keyword.lower()
        hits = [{"path": f["path"], "count": f["content"].lower().count(k)}
                for f in self.state["files"] if k in f["content"].lower()]
        return {"keyword": keyword, "matches": hits}

    @tool(writes=False, consumes={"path": "file_path"},
          phrases=["How many words are in {path}?", "Count the words and lines of {path}."])
    def word_count(self, path: str) -> dict:
        """Count the lines, words and characters of a text file.

        Args:
            path: Absolute path of the file.
        """
        c = self._file(path)["content"]
        return {"path": self._norm(path), "lines": c.count("\n") + (1 if c and not c.endswith("\n") else 0),
                "words": len(c.split()), "characters": len(c)}
