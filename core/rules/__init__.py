"""Alert rules: parameter schemas, pure evaluators per kind, and the engine that applies them.

- params: one schema per rule kind, with messages a non-programmer understands (en, ko);
- describe: a rule (and an alert's finding) in words, for pages and notifications;
- scope: which site, resident or device type a rule covers;
- evaluate: pure functions, one per windowed kind, over plain data;
- kinds: the table of rule kinds, their windows, and the evaluators' inputs built once;
- episodes: the pure episode book (open, repeat, same, clear) the engine and backtest share;
- world: the registry as rules see it (residents, devices in service, sites, silences, routines);
- events: which event rules match an event (ingest's instant path);
- engine: the per-minute tick that loads data in bulk and opens or resolves alerts;
- backtest: the same judgement replayed over stored days, for a saved or draft rule.

The light parts are re-exported here; import core.rules.engine / core.rules.events directly.
"""

from core.rules.describe import describe_finding, describe_params, describe_rule
from core.rules.params import RuleParamsError, parse_params, validate_params

__all__ = [
    "RuleParamsError",
    "describe_finding",
    "describe_params",
    "describe_rule",
    "parse_params",
    "validate_params",
]
