"""Log sources: where the agent's lines come from (port in :mod:`.base`)."""

from shieldwall.agent.sources.base import Batch, LineSource, Position
from shieldwall.agent.sources.file import FileSource
from shieldwall.agent.sources.stdin import StdinSource
from shieldwall.lines import LineSplitter

__all__ = ["Batch", "FileSource", "LineSource", "LineSplitter", "Position", "StdinSource"]
