"""The courses API: the viewer's courses and their role in each (scripts and notebooks start here)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api_docs import errors

from .models import Membership


class CourseListApi(APIView):
    class CourseOutputSerializer(serializers.Serializer):
        slug = serializers.SlugField()
        title = serializers.CharField()
        role = serializers.ChoiceField(choices=Membership.Role.choices)

    @extend_schema(operation_id="courses_list", responses={200: CourseOutputSerializer(many=True), **errors(401, 403)})
    def get(self, request: Request) -> Response:
        """The courses you take part in, with your role in each."""
        rows = Membership.objects.filter(user=request.user).select_related("course").order_by("course__slug")
        data = [{"slug": m.course.slug, "title": m.course.title, "role": m.role} for m in rows]
        return Response(self.CourseOutputSerializer(data, many=True).data)
