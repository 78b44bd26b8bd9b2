"""manage.py sandbox_check"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.sandbox import REQUIRED_LAYERS, Sandbox, SandboxFault


class Command(BaseCommand):
    help = (
        "Start a sandbox zygote, harden one child the way every graded child is hardened, and print each "
        "isolation layer and whether it is active on this machine, then what a hostile child tried and "
        "whether it was blocked. Exits 1 when seccomp, Landlock or the rlimits are missing: the worker then "
        "refuses to grade unless GRADER_ALLOW_UNSAFE_SANDBOX is on."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with Sandbox(require=()) as sandbox:
                hello = sandbox.hello
                probe = hello.get("probe") or {}
        except SandboxFault as exc:
            raise CommandError(f"the sandbox did not start: {exc}") from None
        ok, bad = self.style.SUCCESS, self.style.ERROR
        self.stdout.write(f"Sandbox zygote: torch {hello.get('torch')}, pid {hello.get('pid')} in its namespace")
        self.stdout.write("Isolation layers of a graded child:")
        for name, layer in hello["layers"].items():
            mark = ok("[active]  ") if layer["active"] else bad("[inactive]")
            self.stdout.write(f"  {mark} {name:<20} {layer['detail']}")
        self.stdout.write("Hostile actions tried inside a hardened child:")
        for action, blocked in probe.get("blocked", {}).items():
            self.stdout.write(f"  {ok('[blocked] ') if blocked else bad('[ALLOWED] ')} {action}")
        self.stdout.write("Imports after hardening:")
        for module, result in probe.get("imports", {}).items():
            self.stdout.write(f"  {ok('[ok]    ') if result == 'ok' else bad('[failed]')} {module} {'' if result == 'ok' else result}")
        missing = [n for n in REQUIRED_LAYERS if not hello["layers"].get(n, {}).get("active")]
        if not missing:
            self.stdout.write(ok(f"Required for grading ({', '.join(REQUIRED_LAYERS)}): all active."))
        elif settings.GRADER_ALLOW_UNSAFE_SANDBOX:
            self.stdout.write(bad(f"MISSING {', '.join(missing)}: workers grade anyway because "
                                  "GRADER_ALLOW_UNSAFE_SANDBOX is on. Unsafe with untrusted learners."))
        else:
            raise CommandError(f"missing {', '.join(missing)}: workers will refuse to grade here")
