"""manage.py sandbox_check"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from grader.sandbox import LAYERS, REQUIRED_LAYERS, Sandbox, SandboxFault, missing_layers


class Command(BaseCommand):
    help = (
        "Start a sandbox zygote, harden one child the way every graded child is hardened, and print each "
        "isolation layer and whether it is active on this machine, then what a hostile child tried and "
        "whether it was blocked. Exits 1 when a required layer is missing (see grader/sandbox/policy.py and "
        "SECURITY.md): the worker then refuses to grade unless GRADER_ALLOW_UNSAFE_SANDBOX is on."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with Sandbox(require=()) as sandbox:
                hello = sandbox.hello
                probe = hello.get("probe") or {}
        except SandboxFault as exc:
            raise CommandError(f"the sandbox did not start: {exc}") from None
        ok, bad = self.style.SUCCESS, self.style.ERROR
        layers = hello.get("layers", {})
        self.stdout.write(f"Sandbox zygote: torch {hello.get('torch')}, pid {hello.get('pid')} in its namespace")
        if hello.get("error"):
            self.stdout.write(bad(f"The probe child failed: {hello['error']}"))
        self.stdout.write("Isolation layers of a graded child:")
        for name in [*LAYERS, *(n for n in layers if n not in LAYERS)]:
            layer = layers.get(name, {"active": False, "detail": "not reported"})
            mark = ok("[active]  ") if layer["active"] else bad("[inactive]")
            required = " (required)" if name in REQUIRED_LAYERS else ""
            self.stdout.write(f"  {mark} {name:<18}{required:<11} {layer['detail']}")
        self.stdout.write("Hostile actions tried inside a hardened child:")
        for action, blocked in probe.get("blocked", {}).items():
            self.stdout.write(f"  {ok('[blocked] ') if blocked else bad('[ALLOWED] ')} {action}")
        self.stdout.write("Imports after hardening:")
        for module, result in probe.get("imports", {}).items():
            self.stdout.write(f"  {ok('[ok]    ') if result == 'ok' else bad('[failed]')} {module} {'' if result == 'ok' else result}")
        absent = missing_layers(layers)
        if not absent:
            self.stdout.write(ok(f"Required for grading ({', '.join(REQUIRED_LAYERS)}): all active."))
        elif settings.GRADER_ALLOW_UNSAFE_SANDBOX:
            self.stdout.write(bad(f"MISSING {', '.join(absent)}: workers grade anyway because "
                                  "GRADER_ALLOW_UNSAFE_SANDBOX is on. Unsafe with untrusted learners."))
        else:
            raise CommandError(f"missing {', '.join(absent)}: workers will refuse to grade here")
