"""Harnesses that run a real alliance on this machine: a council and member agents as
processes on 127.0.0.1 (``alliance``), the demo (``demo``) and the live drill
(``live_drill``). Adapters: they start processes and talk HTTP; the drill's core never
imports them."""
