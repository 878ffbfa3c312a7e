"""Development tooling, not deployed: the local stack (``tandem up``), the demo story
(``tandem demo``) and the metric simulator (``tandem simulate``)."""
