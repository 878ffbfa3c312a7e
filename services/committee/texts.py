"""The committee's user-facing sentences, in English and Simplified Chinese.

Agenda items and improvement suggestions are served in both languages at once (``Text``), so the
console, an e-mail and an export show the same sentence whatever the reader's language. The
Chinese terms are the glossary's (/work/shared/GLOSSARY.md): KPI(关键绩效指标), 数据未按时更新,
数据负责部门, 进度更新, 能力素质, 部门协作评分, 宽松 / 严格评分人, 申诉, 决议 / 负责人 / 完成期限.

A template's placeholders take plain values, or a ``Text`` (a term), which is rendered in the
language of the sentence it goes into.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["LANGUAGES", "Text", "term", "text"]

LANGUAGES = ("en", "zh_Hans")


class Text(BaseModel):
    """One sentence in every language served."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    en: str
    zh_Hans: str


_TERMS: dict[str, tuple[str, str]] = {
    # stages
    "goal_setting": ("goal setting", "目标设定"),
    "tracking": ("tracking", "过程跟踪"),
    "evaluation": ("evaluation", "绩效评估"),
    "feedback": ("feedback", "绩效反馈"),
    "result_application": ("result application", "结果应用"),
    "closed": ("closed", "已结束"),
    # collaboration dimensions
    "responsiveness": ("responsiveness", "响应速度"),
    "data_quality": ("data quality", "数据质量"),
    "reliability": ("reliability", "可靠性"),
    # comment themes
    "theme.responsiveness": ("slow responses", "响应慢"),
    "theme.data_quality": ("data errors", "数据错误"),
    "theme.communication": ("communication and handovers", "沟通与交接"),
    "theme.ownership": ("unclear ownership", "职责不清"),
    # rater flags
    "lenient": ("lenient", "宽松"),
    "strict": ("strict", "严格"),
    # trends
    "trend.worsening": (" and falling", "，且呈下降趋势"),
    "trend.improving": (" and rising", "，且呈上升趋势"),
    "trend.flat": ("", ""),
    # actions (what a suggestion asks for)
    "action.responsiveness": (
        "agree a response-time service level (first answer within two working days) and name one contact on each side.",
        "约定响应时限(两个工作日内首次答复)，双方各指定一名对接人。",
    ),
    "action.data_quality": (
        "agree shared data definitions and validation checks, and review data quality together every month.",
        "统一数据口径和校验规则，每月共同复核数据质量。",
    ),
    "action.reliability": (
        "make commitments explicit: a joint plan with owners and due dates, reviewed every two weeks.",
        "明确双方承诺：制定带负责人和完成期限的联合计划，每两周回顾一次。",
    ),
    "action.theme.responsiveness": (
        "route requests through one shared queue with visible turnaround times.",
        "通过统一的需求队列提交请求，并公开处理时效。",
    ),
    "action.theme.data_quality": (
        "run a joint root-cause review of the recurring data errors and fix them at the source.",
        "针对反复出现的数据错误开展联合根因分析，并从源头修正。",
    ),
    "action.theme.communication": (
        "hold a short recurring cross-team sync and agree a handover checklist.",
        "建立简短的定期跨团队沟通会，并约定交接清单。",
    ),
    "action.theme.ownership": (
        "clarify who decides and who delivers the shared work, and escalate priority conflicts to both "
        "department heads.",
        "明确共同工作的决策人和执行人，优先级冲突提交双方部门负责人处理。",
    ),
}

_SENTENCES: dict[str, tuple[str, str]] = {
    # agenda
    "agenda.blocked_stage": (
        "Stage {stage} cannot end: {reason} ({unblock_by} can unblock it{action})",
        "{stage}阶段无法结束：{reason}(可由{unblock_by}解除{action})",
    ),
    "agenda.incident": (
        "Handoff {handoff} was refused and waits for an operator: {reason}",
        "交接步骤{handoff}被拒绝，等待运维处理：{reason}",
    ),
    "agenda.lagging_department": (
        "{department}: {done} of {total} done in {stage}",
        "{department}：{stage}阶段已完成{done}/{total}",
    ),
    "agenda.kpi_off_track": (
        "{department}: {count} KPI(s) below {floor:g}% of target",
        "{department}：{count}项KPI(关键绩效指标)低于目标的{floor:g}%",
    ),
    "agenda.stale_data": (
        "{department} (data owner): {count} KPI(s) with stale data",
        "{department}(数据负责部门)：{count}项KPI数据未按时更新",
    ),
    "agenda.weak_pair": (
        "Collaboration {a} and {b}: {overall:.2f} of 5{trend}",
        "{a}与{b}的部门协作评分：{overall:.2f}/5{trend}",
    ),
    "agenda.trend_down": (" (down {change:.2f} since the last meeting)", "(较上次会议下降{change:.2f})"),
    "agenda.trend_up": (" (up {change:.2f} since the last meeting)", "(较上次会议上升{change:.2f})"),
    "agenda.trend_same": (" (unchanged since the last meeting)", "(与上次会议持平)"),
    "agenda.trend_new": ("", ""),
    "agenda.distribution": (
        "Rating distribution outside the guideline: {violations}",
        "评分等级分布超出分布指导比例：{violations}",
    ),
    "agenda.rater": (
        "{group} rates {flag}ly: mean {mean:.2f} ({z:+.1f} standard deviations)",
        "{group}为{flag}评分人：平均分{mean:.2f}(偏离{z:+.1f}个标准差)",
    ),
    "agenda.open_appeals": (
        "{count} open appeal(s), {overdue} past HR's deadline",
        "{count}项申诉待处理，其中{overdue}项已逾期",
    ),
    "agenda.overdue_decision": (
        "Overdue decision '{title}' (owner {owner}, due {due})",
        "已逾期决议“{title}”(负责人{owner}，完成期限{due})",
    ),
    "agenda.source_unavailable": ("{source} could not be read: {reason}", "无法读取{source}的数据：{reason}"),
    # suggestions
    "suggest.kpi_gap": (
        "{kpi} is at {attainment:.0f}% of target{trend}: agree a recovery plan with milestones and review it at "
        "every check-in.",
        "{kpi}目前为目标的{attainment:.0f}%{trend}：请制定带里程碑的改进计划，并在每次进度更新时回顾。",
    ),
    "suggest.kpi_gap_team": (
        "{count} of {size} people in the team have KPIs below {floor:g}% of target: go through them in the next 1:1s.",
        "团队{size}人中有{count}人的KPI低于目标的{floor:g}%：请在下一次一对一面谈中逐项回顾。",
    ),
    "suggest.stale_data": (
        "{kpi} has had stale data since {due}: ask {owner} (data owner) to restore the feed.",
        "{kpi}自{due}起数据未按时更新：请联系{owner}(数据负责部门)恢复数据。",
    ),
    "suggest.check_in_missed": (
        "No check-in on {kpi} since {last} (every {cadence} days): post a check-in with your confidence.",
        "{kpi}自{last}起未进行进度更新(应每{cadence}天一次)：请提交进度更新并注明信心程度。",
    ),
    "suggest.competency_gap": (
        "{competency}: {score:.1f} against the team's {reference:.1f}: add a development goal for it to the "
        "development plan.",
        "能力素质“{competency}”：{score:.1f}，团队平均{reference:.1f}：请在发展计划中加入相应的发展目标。",
    ),
    "suggest.competency_gap_team": (
        "The team's {competency} ({score:.1f}) is below the department's {reference:.1f}: plan a team session on it.",
        "团队的能力素质“{competency}”({score:.1f})低于部门平均{reference:.1f}：请安排一次团队专项提升。",
    ),
    "suggest.collaboration_dimension": (
        "Other departments rate {department}'s {dimension} {score:.1f} of 5: {action}",
        "其他部门对{department}的{dimension}部门协作评分为{score:.1f}/5：{action}",
    ),
    "suggest.comment_theme": (
        "{mentions} comment(s) about {department} mention {theme}: {action}",
        "有{mentions}条关于{department}的评论提到{theme}：{action}",
    ),
    "suggest.rater_leniency": (
        "{department}'s ratings are {flag} (mean {mean:.2f}, {z:+.1f} standard deviations): bring them to the "
        "calibration session.",
        "{department}为{flag}评分人(平均分{mean:.2f}，偏离{z:+.1f}个标准差)：请在校准会议上复核其评分。",
    ),
}


def term(key: str) -> Text:
    """A glossary term (a stage, a dimension, a theme, an action) in every language; an unknown key
    reads as itself (a stage name added upstream still renders)."""
    en, zh = _TERMS.get(key, (key, key))
    return Text(en=en, zh_Hans=zh)


def text(key: str, **values: Any) -> Text:
    """The sentence ``key`` with ``values`` filled in; a ``Text`` value is rendered per language."""
    templates = _SENTENCES[key]
    rendered = [
        template.format(**{name: getattr(v, language) if isinstance(v, Text) else v for name, v in values.items()})
        for template, language in zip(templates, LANGUAGES, strict=True)
    ]
    return Text(en=rendered[0], zh_Hans=rendered[1])
