"""The LTI 1.3 tool: learning platforms (Canvas, Moodle, ...) launch our quizzes, and get scores back.

Built on django-lti (`lti_tool`: platform registrations, deployments, keys, and the launch records)
and PyLTI1p3 underneath it (the OIDC and JWT checks, deep linking, the AGS and NRPS clients).
"""
