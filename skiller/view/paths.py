"""Where each page of the site lives; every link is relative, so the site works from file:// too."""
from __future__ import annotations

from skiller.view.markup import slug


def environment(name: str, root: str = "../") -> str:
    return f"{root}env/{slug(name)}.html"


def task(task_id: str, root: str = "../") -> str:
    return f"{root}task/{slug(task_id)}.html"


def transcript(transcript_id: str, root: str = "../") -> str:
    return f"{root}transcript/{slug(transcript_id)}.html"


def evaluations(root: str = "../") -> str:
    return f"{root}evaluations.html"
