"""The instructor panel for quiz content.

Items are edited with their checks and choices inline. Saving a code item runs
its reference solution through the sandbox (in the form's clean, with the
inline checks as posted): an item whose reference fails is not saved, and the
form says why. A successful save stores each check's expected observation and
resolved compare mode, the reference fingerprint, and bumps the item's version
when anything that grading depends on changed. Content round-trips through the
YAML format: quizzes export to it, and a file uploaded here goes through the
same loader as `manage.py load_quizzes`.
"""
from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.forms.models import BaseInlineFormSet, construct_instance
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from courses import roles
from grader.models import Submission
from grader.sandbox import CHECK_KINDS, describe
from reports import views as reports
from reports.regrading import items_label, items_regrade

from .content_export import item_document, quiz_filename, quiz_yaml, quizzes_zip
from .content_format import CHECK_FIELDS, ContentError
from .models import Check, Choice, Item, Quiz
from .references import (Reference, ReferenceProblem, Validation, item_reference_store, item_spec, item_validate,
                         quiz_items_renumber, reference_run)
from .services import GRADING_FIELDS, UploadRefused, items_revert_to_file, quiz_upload_load
from .widgets import CodeEditorWidget, CommaListField, TextListField

logger = logging.getLogger(__name__)

REGRADE_PERMISSION = "grader.regrade_submission"
STATISTICS_PERMISSIONS = ("quiz.view_quiz", "grader.view_submission")
IMPORT_PERMISSIONS = tuple(f"quiz.{action}_{model}" for model in ("quiz", "item", "check", "choice")
                           for action in ("add", "change", "delete"))


# ---------------------------------------------------------------- forms

# Content-format paths of an item's fields, as ContentError names them, to form fields.
FORM_FIELD_OF_PATH = {
    "slug": "slug", "kind": "kind", "title": "title", "prompt": "prompt", "explanation": "explanation",
    "hints": "hints", "tags": "tags", "reveal_after_attempts": "reveal_after_attempts", "max_attempts": "max_attempts",
    "starter": "starter_code",
    "setup": "setup_code", "hidden_setup": "hidden_setup_code", "solution": "solution_code", "params": "params",
    "params_per_attempt": "params_per_attempt", "hidden_rerun": "hidden_rerun", "reveal_expected": "reveal_expected",
    "limits.time_seconds": "time_limit_seconds", "limits.memory_mb": "memory_limit_mb", "multiple": "multiple",
}
_ROW_PATH = re.compile(r"^(?P<rows>checks|choices)\[(?P<index>\d+)\](?:\.(?P<field>.+))?$")
SLUG_ERROR = "Lowercase letters, digits and single dashes (the content format's slugs)."


class MultilineField(forms.CharField):
    """Text as typed: not stripped (code and Markdown keep their trailing newline), and with
    the CRLF line ends browsers post turned into the LF ones the YAML content has."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**kwargs, "strip": False})

    def to_python(self, value: Any) -> str | None:
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n") if value else value


class QuizForm(forms.ModelForm):
    class Meta:
        model = Quiz
        fields = ("slug", "title", "description", "order")
        field_classes = {"description": MultilineField}

    def clean_slug(self) -> str:
        from .content_format import SLUG

        slug = self.cleaned_data["slug"]
        if not SLUG.match(slug):
            raise forms.ValidationError(SLUG_ERROR)
        return slug


class RenumberedRowForm(forms.ModelForm):
    """A check or choice row: its order is renumbered by OrderedInlineFormSet, so it is not checked for
    collisions here (a new row's order may equal an old one's until then)."""

    def _get_validation_exclusions(self) -> set[str]:
        return {*super()._get_validation_exclusions(), "order"}


class CheckForm(RenumberedRowForm):
    """A check; compare may be left to be inferred from the reference, as in the YAML format."""

    compare = forms.ChoiceField(
        choices=[("", "infer"), *((mode, mode) for mode in Check.Compare.values)], required=False,
        help_text="; ".join(f"{name}: {kind.help}" for name, kind in CHECK_KINDS.items())
        + ". Infer: value, none or bool, from what the reference solution gives.")
    sources = forms.CharField(
        required=False, label="from", widget=forms.TextInput(attrs={"size": 10, "class": "code-input"}),
        help_text="derived: the given tensors the target must come from; autograd (optional): the results the "
                  "backward pass must start from; separated by commas (e.g. x, w)")

    class Meta:
        model = Check
        fields = ("order", *CHECK_FIELDS)
        field_classes = {"feedback": MultilineField}
        widgets = {
            "target": forms.TextInput(attrs={"class": "code-input", "size": 22, "spellcheck": "false"}),
            "name": forms.TextInput(attrs={"size": 10}),
            "rtol": forms.NumberInput(attrs={"style": "width: 5em", "step": "any"}),
            "atol": forms.NumberInput(attrs={"style": "width: 5em", "step": "any"}),
            "weight": forms.NumberInput(attrs={"style": "width: 3.5em", "step": "any"}),
            "order": forms.NumberInput(attrs={"style": "width: 3em"}),
            "feedback": forms.Textarea(attrs={"rows": 2, "cols": 26}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.instance.compare_given:
            self.initial["compare"] = ""
        self.initial["sources"] = ", ".join(self.instance.sources or [])

    def clean_sources(self) -> list[str]:
        return [name.strip() for name in (self.cleaned_data.get("sources") or "").split(",") if name.strip()]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        given = cleaned.get("compare") or ""
        self.instance.compare_given = bool(given)
        if not given:  # a placeholder until the reference run resolves it
            cleaned["compare"] = self.instance.compare if self.instance.pk else Check.Compare.VALUE
        return cleaned


class ChoiceForm(RenumberedRowForm):
    class Meta:
        model = Choice
        fields = ("order", "text", "correct", "feedback")
        field_classes = {"text": MultilineField, "feedback": MultilineField}
        widgets = {
            "order": forms.NumberInput(attrs={"style": "width: 3.5em"}),
            "text": forms.Textarea(attrs={"rows": 2, "cols": 48}),
            "feedback": forms.Textarea(attrs={"rows": 2, "cols": 40}),
        }


class OrderedInlineFormSet(BaseInlineFormSet):
    """Checks and choices numbered 0, 1, 2… by the order the rows are given (their `order` field, which
    the ↑ ↓ buttons of grader/inline-order.js rewrite, then their place on the page), whatever numbers
    were typed: a row added by "Add another" never collides with another's order. The blank row shown for
    a new one starts with the next number."""

    RENUMBER_OFFSET = 1_000_000  # existing rows park here while the new numbers are written

    def clean(self) -> None:
        super().clean()
        kept = [f for f in self.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")
                and (f.instance.pk or f.has_changed())]
        kept.sort(key=lambda f: (f.cleaned_data.get("order") is None, f.cleaned_data.get("order") or 0,
                                 self.forms.index(f)))
        for number, form in enumerate(kept):
            form.cleaned_data["order"] = form.instance.order = number
        self._kept = kept

    def validate_unique(self) -> None:
        """Orders are renumbered above, so they cannot collide; nothing else of a row is unique."""

    def save(self, commit: bool = True) -> list[Any]:
        if commit and self.instance.pk:
            self.model.objects.filter(item=self.instance).update(order=F("order") + self.RENUMBER_OFFSET)
        saved = super().save(commit)
        if commit:
            for form in getattr(self, "_kept", []):
                self.model.objects.filter(pk=form.instance.pk).update(order=form.instance.order)
        return saved

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        kwargs = super().get_form_kwargs(index)
        initial_count = self.initial_form_count()
        if index is not None and initial_count <= index < initial_count + self.extra:
            taken = [obj.order for obj in self.get_queryset()]
            next_order = max(taken, default=-1) + 1 + index - initial_count
            kwargs["initial"] = {**kwargs.get("initial", {}), "order": next_order}
        return kwargs


FormsetFactory = Callable[["ItemForm"], BaseInlineFormSet]


class ItemForm(forms.ModelForm):
    """An item with its inline checks and choices validated as the YAML loader would,
    and, for a code item, its reference solution run through the sandbox."""

    # prefix -> builds the admin's inline formset bound to this form's data (set by ItemAdmin.get_form)
    inline_formsets: ClassVar[dict[str, FormsetFactory]] = {}

    class Meta:
        model = Item
        fields = "__all__"
        field_classes = {name: MultilineField for name in ("prompt", "explanation", "starter_code", "setup_code",
                                                           "hidden_setup_code", "solution_code")}
        widgets = {
            "starter_code": CodeEditorWidget(rows=10),
            "setup_code": CodeEditorWidget(rows=6),
            "hidden_setup_code": CodeEditorWidget(rows=6),
            "solution_code": CodeEditorWidget(rows=10),
            "prompt": forms.Textarea(attrs={"rows": 8, "cols": 80}),
            "explanation": forms.Textarea(attrs={"rows": 6, "cols": 80}),
        }

    hints = TextListField(rows=2, label_each="hint", help_text="Markdown; shown one at a time, in this order")
    tags = CommaListField(required=False, help_text="Comma-separated, e.g. backward, notebook-q1")
    reference: Reference | None = None

    def _rows(self, prefix: str, related: str) -> list[Any] | None:
        """The item's checks or choices as they will be saved; None when their formset is invalid."""
        factory = self.inline_formsets.get(prefix)
        if factory is None or f"{prefix}-TOTAL_FORMS" not in self.data:
            return list(getattr(self.instance, related).all()) if self.instance.pk else []
        formset = factory(self)
        if not formset.is_valid():
            return None
        return [f.instance for f in formset.forms
                if (f.instance.pk or f.has_changed()) and not (formset.can_delete and f.cleaned_data.get("DELETE"))]

    def _content_error(self, exc: ContentError, checks: list[Check]) -> None:
        where = exc.path or ""
        row = _ROW_PATH.match(where)
        if row:
            index = int(row["index"])
            label = (f"Check {index + 1} ({checks[index].target})" if row["rows"] == "checks" and index < len(checks)
                     else f"{row['rows'][:-1].capitalize()} {index + 1}")
            self.add_error(None, f"{label}: {row['field'] + ' ' if row['field'] else ''}{exc.message}")
            return
        field = FORM_FIELD_OF_PATH.get(re.sub(r"\[\d+\]$", "", where))
        if field in self.fields:
            self.add_error(field, f"This field {exc.message}")
        else:
            self.add_error(None, f"{where.capitalize() or 'Item'}: {exc.message}")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self.reference = None
        if self.errors:
            return cleaned
        draft = construct_instance(self, copy.copy(self.instance), self._meta.fields, self._meta.exclude)
        checks = self._rows("checks", "checks")
        choices = self._rows("choices", "choices")
        if checks is None or choices is None:
            return cleaned  # the inline rows have errors of their own; the admin shows them and saves nothing
        if draft.kind == Item.Kind.CHOICE and checks:
            self.add_error(None, "A choice item has no checks: delete its checks, or make it a code item.")
            return cleaned
        if draft.kind == Item.Kind.CODE and choices:
            self.add_error(None, "A code item has no choices: delete its choices, or make it a choice item.")
            return cleaned
        checks.sort(key=lambda c: c.order)
        try:
            spec = item_spec(item_document(draft, checks=checks, choices=choices))
        except ContentError as exc:
            self._content_error(exc, checks)
            return cleaned
        if spec.kind == Item.Kind.CODE:
            try:
                self.reference = reference_run(spec=spec)
            except ReferenceProblem as exc:
                self.add_error(exc.field, str(exc))
        return cleaned


# ---------------------------------------------------------------- inlines


class CheckInline(admin.TabularInline):
    model = Check
    form = CheckForm
    formset = OrderedInlineFormSet
    extra = 1
    fields = ("order", *CHECK_FIELDS, "expected_value")
    readonly_fields = ("expected_value",)
    classes = ("kind-code",)
    verbose_name_plural = "checks (evaluated after the learner's code)"

    @admin.display(description="expected (from the reference)")
    def expected_value(self, obj: Check) -> str:
        return "–" if obj.expected is None else describe(obj.expected)


class ChoiceInline(admin.TabularInline):
    model = Choice
    form = ChoiceForm
    formset = OrderedInlineFormSet
    extra = 1
    classes = ("kind-choice",)
    verbose_name_plural = "choices"


class ItemInline(admin.TabularInline):
    """The items of a quiz, read-only: each is edited on its own page."""

    model = Item
    fields = ("order", "slug", "title", "kind", "version", "archived")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("order", "slug")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# ---------------------------------------------------------------- quizzes


class QuizImportForm(forms.Form):
    file = forms.FileField(label="YAML file", help_text=(
        "One quiz in the format of quiz/content/README.md, as exported here. Loaded like "
        "`manage.py load_quizzes`: an upsert by slug, all or nothing; items of the quiz that are missing "
        "from the file are deleted, or archived when they have submissions."))
    recompute = forms.BooleanField(required=False, label="Run every reference solution again, even unchanged ones")


@admin.register(Quiz)
class QuizAdmin(admin.ModelAdmin):
    form = QuizForm
    list_display = ("title", "slug", "order", "item_count", "statistics_link", "export_link")
    search_fields = ("slug", "title")
    inlines = (ItemInline,)
    actions = ("export_yaml", "download_gradebook")

    class Media:
        css = {"all": ("grader/admin.css",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Quiz]:
        return super().get_queryset(request).annotate(
            _item_count=Count("items", filter=Q(items__archived=False)))

    def save_model(self, request: HttpRequest, obj: Quiz, form: Any, change: bool) -> None:
        if form.has_changed():
            obj.edited_in_panel = True  # load_quizzes keeps the panel's title and description from now on
        super().save_model(request, obj, form, change)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        edited = [f.instance.pk for f in formset.forms if f.has_changed() and f.instance.pk]
        Item.objects.filter(pk__in=edited).update(edited_in_panel=True)

    @admin.display(description="items", ordering="_item_count")
    def item_count(self, obj: Quiz) -> int:
        return obj._item_count  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="statistics")
    def statistics_link(self, obj: Quiz) -> SafeString:
        return format_html('<a href="{}">Statistics</a>', reverse("admin:quiz_quiz_statistics", args=[obj.pk]))

    @admin.display(description="YAML")
    def export_link(self, obj: Quiz) -> SafeString:
        return format_html('<a href="{}">Export</a>', reverse("admin:quiz_quiz_export", args=[obj.pk]))

    # ---- actions
    @admin.action(description="Export selected quizzes as YAML", permissions=["view"])
    def export_yaml(self, request: HttpRequest, queryset: QuerySet[Quiz]) -> HttpResponse:
        quizzes = list(queryset.order_by("order", "slug"))
        if len(quizzes) == 1:
            return yaml_response(quizzes[0])
        response = HttpResponse(quizzes_zip(quizzes), content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="quizzes.zip"'
        return response

    def has_gradebook_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("grader.view_submission")

    @admin.action(description="Download the gradebook (CSV) of selected quizzes", permissions=["gradebook"])
    def download_gradebook(self, request: HttpRequest, queryset: QuerySet[Quiz]) -> HttpResponse:
        return reports.quizzes_gradebook(request, queryset)

    # ---- views
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="quiz_quiz_import"),
            path("<int:pk>/export/", wrap(self.export_view), name="quiz_quiz_export"),
            path("<int:pk>/statistics/", wrap(self.statistics_view), name="quiz_quiz_statistics"),
            *super().get_urls(),
        ]

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Download one quiz as the YAML file the loader reads."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        return yaml_response(get_object_or_404(Quiz, pk=pk))

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a quiz YAML file and load it like `manage.py load_quizzes` (all or nothing)."""
        if not request.user.has_perms(IMPORT_PERMISSIONS):
            raise PermissionDenied
        form = QuizImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            report_lines = _import_quiz_file(form)
            if report_lines is not None:
                for line in report_lines:
                    messages.success(request, line)
                return HttpResponseRedirect(reverse("admin:quiz_quiz_changelist"))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "form": form,
                   "title": "Import a quiz from YAML", "media": self.media + form.media}
        return TemplateResponse(request, "admin/quiz/quiz/import.html", context)

    def statistics_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """A quiz's statistics, over the courses the viewer staffs."""
        if not request.user.has_perms(STATISTICS_PERMISSIONS):
            raise PermissionDenied
        return reports.quiz_statistics_page(request, get_object_or_404(Quiz, pk=pk), admin_site=self.admin_site,
                                            opts=self.model._meta)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"can_import": request.user.has_perms(IMPORT_PERMISSIONS), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {"can_view_statistics": request.user.has_perms(STATISTICS_PERMISSIONS), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)


def yaml_response(quiz: Quiz) -> HttpResponse:
    response = HttpResponse(quiz_yaml(quiz), content_type="application/yaml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{quiz_filename(quiz)}"'
    return response


def _import_quiz_file(form: QuizImportForm) -> list[str] | None:
    """Load the uploaded file; the loader's report as lines, or None with the error on the form."""
    upload = form.cleaned_data["file"]
    try:
        name, quizzes, report = quiz_upload_load(name=upload.name, chunks=upload.chunks(),
                                                 recompute=form.cleaned_data["recompute"])
    except UploadRefused as exc:
        form.add_error("file", str(exc))
        return None
    lines = [f"{name}: {report.summary(len(quizzes))}"]
    for label, slugs in (("created", report.created), ("updated", report.updated), ("archived", report.archived),
                         ("deleted", report.deleted)):
        if slugs:
            lines.append(f"Items {label}: {', '.join(slugs)}")
    return lines


# ---------------------------------------------------------------- items


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    form = ItemForm
    inlines = (CheckInline, ChoiceInline)
    list_display = ("slug", "title", "quiz", "kind", "order", "version", "check_count", "reference_state", "archived")
    list_filter = ("quiz", "kind", "archived")
    search_fields = ("slug", "title", "prompt")
    list_select_related = ("quiz",)
    ordering = ("quiz__order", "quiz__slug", "order", "slug")
    actions = ("validate_references", "regrade_submissions", "revert_to_file")
    readonly_fields = ("reference_values", "reference_state", "reference_fingerprint", "reference_computed_at",
                       "version", "submissions_link", "statistics", "source")
    fieldsets = (
        (None, {"fields": ("quiz", "slug", "kind", "title", "order", "archived", "source")}),
        ("Text", {"fields": ("prompt", "explanation", "hints", "tags", "reveal_after_attempts", "max_attempts")}),
        ("Code items", {"classes": ("kind-code",), "fields": (
            "starter_code", "setup_code", "hidden_setup_code", "solution_code", "params",
            ("params_per_attempt", "hidden_rerun"), "reveal_expected", ("time_limit_seconds", "memory_limit_mb"),
            "reference_values", ("reference_computed_at", "reference_fingerprint"))}),
        ("Choice items", {"classes": ("kind-choice",), "fields": ("multiple",)}),
        ("Grading", {"fields": ("version", "submissions_link")}),
    )

    class Media:
        css = {"all": ("grader/admin.css",)}
        js = ("grader/item-kind.js", "grader/inline-order.js")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Item]:
        return super().get_queryset(request).annotate(_check_count=Count("checks", distinct=True))

    # ---- columns and read-only fields
    @admin.display(description="checks", ordering="_check_count")
    def check_count(self, obj: Item) -> int:
        return obj._check_count  # type: ignore[attr-defined]  # annotated by get_queryset

    @admin.display(description="reference")
    def reference_state(self, obj: Item) -> str:
        if obj.kind != Item.Kind.CODE:
            return "–"
        if obj.reference_computed_at is None:
            return "not computed"
        return f"computed {timezone.localtime(obj.reference_computed_at):%Y-%m-%d %H:%M}"

    @admin.display(description="reference values")
    def reference_values(self, obj: Item) -> SafeString:
        """What the reference solution gave for each check (stored as the checks' expected values)."""
        if obj.pk is None or obj.kind != Item.Kind.CODE:
            return format_html("{}", "Computed from the reference solution when the item is saved.")
        checks = list(obj.checks.order_by("order"))
        if not checks:
            return format_html("{}", "No checks yet.")
        rows = format_html_join("", "<tr><td><code>{}</code></td><td>{}{}</td><td><code>{}</code></td></tr>", (
            (c.target, c.compare, "" if c.compare_given else " (inferred)",
             "not computed" if c.expected is None else describe(c.expected)) for c in checks))
        return format_html('<table class="reference-values"><thead><tr><th>Target</th><th>Compare</th>'
                           "<th>Expected</th></tr></thead><tbody>{}</tbody></table>", rows)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not request.user.has_perms(STATISTICS_PERMISSIONS):
            return fieldsets
        return [*fieldsets[:-1], ("Grading", {"fields": ("version", "submissions_link", "statistics")})]

    @admin.display(description="statistics")
    def statistics(self, obj: Item) -> str:
        return reports.item_statistics_line(obj)

    @admin.display(description="source")
    def source(self, obj: Item) -> str:
        return item_source_note(obj)

    @admin.display(description="submissions")
    def submissions_link(self, obj: Item) -> SafeString:
        if obj.pk is None:
            return format_html("{}", "–")
        count = obj.submissions.count()
        url = reverse("admin:grader_submission_changelist") + f"?item__id__exact={obj.pk}"
        return format_html('<a href="{}">{} submission(s)</a>', url, count)

    # ---- the form: inline formsets are validated with the item, then the reference runs
    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type[ItemForm]:
        form = super().get_form(request, obj, change=change, **kwargs)
        factories: dict[str, FormsetFactory] = {}
        for formset_class, inline in self.get_formsets_with_inlines(request, obj):
            prefix = formset_class.get_default_prefix()

            def factory(bound: ItemForm, formset_class: Any = formset_class, inline: Any = inline,
                        prefix: str = prefix) -> BaseInlineFormSet:
                return formset_class(**self.get_formset_kwargs(request, bound.instance, inline, prefix))

            factories[prefix] = factory
        return type(form.__name__, (form,), {"inline_formsets": factories})

    def save_related(self, request: HttpRequest, form: ItemForm, formsets: list[Any], change: bool) -> None:
        super().save_related(request, form, formsets, change)
        item = form.instance
        if form.has_changed() or any(fs.has_changed() for fs in formsets) or not change:
            # From now on the panel's version is the one that counts: load_quizzes keeps it (unless --force).
            Item.objects.filter(pk=item.pk).update(edited_in_panel=True)
        # By value: a JSON field's bound form can report "changed" for the text of an unchanged value.
        changed = {name for name in set(form.changed_data) & GRADING_FIELDS
                   if form.cleaned_data.get(name) != form.initial.get(name)}
        grading_changed = bool(changed) or any(fs.has_changed() for fs in formsets)
        bumped = item_reference_store(item=item, reference=form.reference, grading_changed=grading_changed,
                                      created=not change)
        quiz_items_renumber(quiz_ids={item.quiz_id, *([form.initial["quiz"]] if form.initial.get("quiz") else [])})
        item.refresh_from_db()
        if form.reference is not None:
            values = "; ".join(f"{t} ({c}{'' if g else ', inferred'}) = {e}" for t, c, g, e in form.reference.rows())
            self.message_user(request, f"Reference solution of {item.slug} ran: {values}.", messages.SUCCESS)
        if bumped:
            graded = item.submissions.exclude(item_version=item.version).exclude(item_version=None).count()
            note = (f" {graded} submission(s) were graded against an earlier version: use the action "
                    "“Regrade all submissions” to grade them against this one.") if graded else ""
            self.message_user(request, f"Grading of {item.slug} changed: it is now version {item.version}.{note}",
                              messages.WARNING if graded else messages.INFO)

    def delete_model(self, request: HttpRequest, obj: Item) -> None:
        super().delete_model(request, obj)
        quiz_items_renumber(quiz_ids={obj.quiz_id})

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        quiz_ids = set(queryset.values_list("quiz_id", flat=True))
        super().delete_queryset(request, queryset)
        quiz_items_renumber(quiz_ids=quiz_ids)

    # ---- actions
    @admin.action(description="Validate: run the reference solutions of selected code items", permissions=["view"])
    def validate_references(self, request: HttpRequest, queryset: QuerySet[Item]) -> HttpResponse:
        items = list(queryset.select_related("quiz").order_by("quiz__order", "order", "slug"))
        return self._validation_response(request, [item_validate(item=i) for i in items])

    def has_regrade_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REGRADE_PERMISSION)

    @admin.action(description="Regrade all submissions of selected items", permissions=["regrade"])
    def regrade_submissions(self, request: HttpRequest, queryset: QuerySet[Item]) -> HttpResponse:
        # only the courses this instructor staffs
        submissions = roles.staff_scope(user=request.user, queryset=Submission.objects.all())
        if request.POST.get("confirm") != "yes":
            return reports.regrade_confirmation(request, submissions.filter(item__in=queryset),
                                                items_label(queryset), self.model._meta)
        return reports.regrade_started(request, items_regrade(items=queryset, requested_by=request.user,
                                                      submissions=submissions))

    @admin.action(description="Revert to file: load selected items again from their YAML files", permissions=["change"])
    def revert_to_file(self, request: HttpRequest, queryset: QuerySet[Item]) -> None:
        for line, level in items_revert_to_file(items=list(queryset)):
            self.message_user(request, line, level)

    # ---- views
    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/validate/", self.admin_site.admin_view(self.validate_view), name="quiz_item_validate"),
            *super().get_urls(),
        ]

    def validate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Run one item's reference solution and show what it gives (nothing is saved)."""
        item = get_object_or_404(Item.objects.select_related("quiz"), pk=pk)
        if not self.has_view_permission(request, item):
            raise PermissionDenied
        return self._validation_response(request, [item_validate(item=item)])

    def _validation_response(self, request: HttpRequest, results: list[Validation]) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "title": "Reference solutions", "results": results, "media": self.media}
        return TemplateResponse(request, "admin/quiz/item/validation.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The item form is wide (code editors, the checks table): no navigation sidebar beside it.
        extra = {"can_view_statistics": request.user.has_perms(STATISTICS_PERMISSIONS),
                 "is_nav_sidebar_enabled": False, **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def add_view(self, request: HttpRequest, form_url: str = "",
                 extra_context: dict[str, Any] | None = None) -> HttpResponse:
        return super().add_view(request, form_url, {"is_nav_sidebar_enabled": False, **(extra_context or {})})


def item_source_note(item: Item) -> str:
    """Where the item's content lives, as the panel says it."""
    if not item.source_file:
        return "Made in the panel: no file holds it (export its quiz to keep it in version control)."
    if item.edited_in_panel:
        return (f"Edited here, differs from {item.source_file}: load_quizzes keeps this version. Export the quiz "
                "to put it in the file, or use the action “Revert to file”.")
    return f"From {item.source_file}, unchanged since it was loaded."
