"""`kiosk report`: what happened at the gate, for the venue's owner.

"How many came in today, and why was my member refused?" from the kiosk's own event store,
read-only and safe while the daemon runs: decisions by decision and by reason (in the words
the gate showed), entries and exits per hour, peak occupancy, the busiest quarter hour,
decision time, time offline, forced passages and unused admissions. Counts only: a report
never names a subject or a pseudonym.

Modules: query (reads the store), summary (computes), render (prints), glossary (reasons in
plain words), command (the command line).
"""

from __future__ import annotations

from kiosk.report.command import add_arguments, cmd_report

__all__ = ["add_arguments", "cmd_report"]
