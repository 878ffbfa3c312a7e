"""Row-scoped reads do not reveal what exists (issue 14: 403 versus 404).

For every per-person resource of the stage services (the ``owned`` reads the authorization
matrix seeds), a caller who may not see the row gets exactly the answer of a row that does not
exist: 404, not a 403 that confirms the appeal, 1:1, plan or result is there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.common.settings import Settings
from tests.integration.test_authz_matrix import STAGE_NON_OWNERS, seeded

MISSING = {"goal_id": "no-such-goal", "appeal_id": "987654", "one_on_one_id": "987654", "plan_id": "987654"}


@pytest.mark.parametrize("service", ["goals", "evaluation", "feedback", "results"])
async def test_a_row_you_may_not_see_answers_like_a_row_that_does_not_exist(
    service: str, settings: Settings, tmp_path: Path
) -> None:
    async with seeded(service, settings, tmp_path) as world:
        checked = 0
        for method, template in world.owned:
            names = re.findall(r"\{(\w+)\}", template)
            row_id = next((n for n in reversed(names) if n in MISSING), None)
            for role, persona in STAGE_NON_OWNERS:
                headers = persona.headers(world.settings, role)
                hidden = await world.client.request(method, world.url(template), headers=headers)
                assert hidden.status_code == 404, (service, template, persona.employee_id, hidden.text)
                checked += 1
                if row_id is not None:
                    absent_url = world.url(template.replace("{" + row_id + "}", MISSING[row_id]))
                    absent = await world.client.request(method, absent_url, headers=headers)
                    assert absent.status_code == 404, (service, absent_url, absent.text)
        assert checked >= 3
