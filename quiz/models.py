"""Quiz content: quizzes, their items, and what grades an item (checks or choices)."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from grader.sandbox import CHECK_KINDS
from grader.sandbox import Check as SandboxCheck


class Quiz(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown")
    order = models.IntegerField(default=0)
    edited_in_panel = models.BooleanField(default=False, editable=False,
                                          help_text="Changed in the panel since its file was last loaded: "
                                          "load_quizzes leaves it alone unless --force")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "slug"]
        verbose_name_plural = "quizzes"

    def __str__(self) -> str:
        return self.title


class Item(models.Model):
    class Kind(models.TextChoices):
        CODE = "code", "Code"
        CHOICE = "choice", "Choice"

    quiz = models.ForeignKey(Quiz, on_delete=models.CASCADE, related_name="items")
    slug = models.SlugField(unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=300)
    prompt = models.TextField(help_text="Markdown")
    explanation = models.TextField(blank=True, help_text="Markdown, shown after passing")
    order = models.IntegerField(default=0)
    hints = models.JSONField(default=list, blank=True, help_text="Ordered list of hints")
    tags = models.JSONField(default=list, blank=True)
    max_attempts = models.PositiveIntegerField(
        null=True, blank=True, help_text="Default for courses: graded attempts allowed (empty: unlimited)")
    reveal_after_attempts = models.PositiveIntegerField(
        default=3, help_text="Explanation and solution are shown after passing or this many attempts (0: only after passing)"
    )
    # code items
    starter_code = models.TextField(blank=True)
    setup_code = models.TextField(blank=True, help_text="Runs before the learner's code, in the same namespace")
    hidden_setup_code = models.TextField(
        blank=True, help_text="Optional: another draw of the setup's given tensors. Code that passes runs again "
        "after it, unseen, and must still match the reference, so numbers typed in fail")
    solution_code = models.TextField(blank=True, help_text="Reference solution; expected values come from running it")
    params = models.JSONField(default=dict, blank=True, help_text="Randomised variants: {name: {range: [low, high], "
                              "step, default} or {choices: [...], default}}; prompt, setup, starter and solution "
                              "write {{ name }}")
    params_per_attempt = models.BooleanField(default=False, help_text="Draw the parameters again for every attempt")
    hidden_rerun = models.BooleanField(default=False, help_text="Items with params: run passing code again on "
                                       "another, unseen draw")
    reveal_expected = models.BooleanField(default=False, help_text="Show expected values in check messages")
    time_limit_seconds = models.FloatField(default=2.0)
    memory_limit_mb = models.PositiveIntegerField(default=256)
    reference_fingerprint = models.CharField(max_length=64, blank=True, editable=False)
    reference_computed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # choice items
    multiple = models.BooleanField(default=False, help_text="Several choices are correct")

    archived = models.BooleanField(default=False, help_text="Removed from its quiz but kept for its submissions")
    # Where the content came from: the one source of truth is the file, until someone edits the item here.
    source_file = models.CharField(max_length=500, blank=True, editable=False,
                                   help_text="The YAML file it was last loaded from (empty: made in the panel)")
    source_hash = models.CharField(max_length=64, blank=True, editable=False,
                                   help_text="sha256 of its content in that file at the last load")
    edited_in_panel = models.BooleanField(default=False, editable=False,
                                          help_text="Changed (or created) in the panel since its last load: "
                                          "load_quizzes leaves it alone unless --force")
    version = models.PositiveIntegerField(default=1, editable=False, help_text="Bumped whenever grading changes")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["quiz__order", "order", "slug"]

    def __str__(self) -> str:
        return f"{self.slug}: {self.title}"

    @property
    def is_code(self) -> bool:
        return self.kind == self.Kind.CODE


class Check(models.Model):
    # The kinds come from the sandbox's one list (grader.sandbox.CHECK_KINDS): Compare.VALUE, Compare.AUTOGRAD...
    Compare = models.TextChoices("Compare", [(name.upper(), (name, kind.label)) for name, kind in CHECK_KINDS.items()])

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="checks")
    order = models.PositiveIntegerField(default=0)
    target = models.CharField(max_length=500, help_text="Python expression evaluated after the learner's code; "
                              "for calls/forbids, the names or construct to look for")
    compare = models.CharField(max_length=10, choices=Compare.choices, default=Compare.VALUE)
    compare_given = models.BooleanField(default=False, editable=False, help_text="compare was set in the content, not inferred")
    name = models.CharField(max_length=200, blank=True)
    rtol = models.FloatField(default=1e-5)
    atol = models.FloatField(default=1e-8)
    strict_dtype = models.BooleanField(default=False)
    weight = models.FloatField(default=1.0)
    hidden = models.BooleanField(default=False)
    feedback = models.TextField(blank=True, help_text="Added to the message when the check fails")
    sources = models.JSONField(default=list, blank=True,
                               help_text="derived: the names of the given tensors the target must come from; "
                                         "autograd (optional): the results the backward pass must start from")
    expected = models.JSONField(null=True, blank=True, editable=False, help_text="Reference observation")

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["item", "order"], name="unique_check_order")]

    def __str__(self) -> str:
        return self.name or self.target

    @property
    def label(self) -> str:
        return self.to_sandbox().label

    def to_sandbox(self) -> SandboxCheck:
        """The check as the sandbox judges it: every field of grader.sandbox.Check, by name."""
        return SandboxCheck(**{f: tuple(getattr(self, f)) if f == "sources" else getattr(self, f)
                               for f in SandboxCheck.__dataclass_fields__})


class Choice(models.Model):
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="choices")
    order = models.PositiveIntegerField(default=0)
    text = models.TextField(help_text="Markdown")
    correct = models.BooleanField(default=False)
    feedback = models.TextField(blank=True)

    class Meta:
        ordering = ["order"]
        constraints = [models.UniqueConstraint(fields=["item", "order"], name="unique_choice_order")]

    def __str__(self) -> str:
        return self.text[:60]


class LearnerItemState(models.Model):
    """What a learner left on an item's page: the code they were writing (not sent) and how many hints they
    opened. Kept on the server, so it follows the learner, not the browser."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="learner_states")
    draft = models.TextField(blank=True)
    draft_saved_at = models.DateTimeField(null=True, blank=True)
    hints_opened = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "item"], name="one_state_per_learner_item")]

    def __str__(self) -> str:
        return f"{self.user} on {self.item.slug}"
