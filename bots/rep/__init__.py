"""The rep bot: commands and cards inside the reps' chat app (WeCom, DingTalk)."""

from bots.rep.alerts import RepAlerts
from bots.rep.workspace import RepWorkspace

__all__ = ["RepAlerts", "RepWorkspace"]
