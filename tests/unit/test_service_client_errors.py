"""A refusal from another service keeps its Problem body: the caller can name the field to its own user."""

from __future__ import annotations

import httpx
import pytest

from services.common.client import NotReady, Refused, ServiceClient, Unavailable


def client(status: int, body: object) -> tuple[ServiceClient, httpx.AsyncClient]:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="<html>oops")

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return ServiceClient(http=http, urls={"evaluation": "http://evaluation"}, tokens=lambda _actor=None: "t"), http


async def test_a_422_keeps_the_problem_body_and_its_field() -> None:
    services, http = client(422, {"detail": "new_rating 'heroic' is not a band", "field": "new_rating"})
    with pytest.raises(Refused) as refused:
        await services.call("POST", "evaluation", "/v1/x", json={})
    await http.aclose()
    assert refused.value.status == 422 and refused.value.field == "new_rating"
    assert refused.value.detail == "new_rating 'heroic' is not a band"
    assert refused.value.problem == {"detail": "new_rating 'heroic' is not a band", "field": "new_rating"}


@pytest.mark.parametrize(("status", "kind"), [(409, NotReady), (503, Unavailable)])
async def test_other_answers_are_classified_and_a_non_json_body_has_no_field(status: int, kind: type) -> None:
    services, http = client(status, None)
    with pytest.raises(kind) as raised:
        await services.call("GET", "evaluation", "/v1/x")
    await http.aclose()
    assert raised.value.problem == {} and raised.value.field is None and "oops" in raised.value.detail
