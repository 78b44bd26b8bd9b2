"""The tool's URLs, under /lti/ (namespace "lti"). Register these with a platform:
login /lti/login/, launch (redirect URI, target link URI) /lti/launch/, keys /lti/jwks/."""
from django.urls import path

from . import views

app_name = "lti"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/<uuid:registration_uuid>/", views.LoginView.as_view(), name="login-registration"),
    path("launch/", views.LaunchView.as_view(), name="launch"),
    path("deep-link/", views.deep_link_choose, name="deep-link"),
    path("jwks/", views.jwks, name="jwks"),
]
