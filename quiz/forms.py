"""Forms of the learner site: sign up, and the no-JavaScript answer form."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Item


class SignupForm(UserCreationForm):
    """Username and password twice; the account is a plain learner."""

    class Meta(UserCreationForm.Meta):
        fields = ("username",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autocapitalize="none", autofocus=True)
        for name in ("password1", "password2"):
            self.fields[name].widget.attrs["autocomplete"] = "new-password"


class AnswerForm(forms.Form):
    """What the item page posts when JavaScript is off (code, or the chosen choices)."""

    code = forms.CharField(required=False, strip=False, widget=forms.Textarea)
    choices = forms.TypedMultipleChoiceField(required=False, coerce=int, choices=())

    def __init__(self, *args: Any, item: Item, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.item = item
        self.fields["choices"].choices = [(choice.pk, choice.pk) for choice in item.choices.all()]

    def clean_code(self) -> str:
        return self.cleaned_data["code"].replace("\r\n", "\n")  # browsers post textareas with CRLF

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.item.is_code:
            data["choices"] = None
        else:
            data["code"] = None
            if not data.get("choices"):
                self.add_error("choices", "Choose an answer first.")
        return data


class JoinForm(forms.Form):
    code = forms.CharField(max_length=32, label="Join code", help_text="The code your instructor gave you")
