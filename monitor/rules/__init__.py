"""Topic rules: files -> parsed queries -> matches with explanations.

May import: the vocabulary (`config`, `model`, `errors`, `text`). Knows no other stage.
"""

from monitor.rules.files import RuleFiles
from monitor.rules.load import ad_hoc_rule, load_rules
from monitor.rules.match import Document
from monitor.rules.model import Rule, RuleSet

__all__ = ["Document", "Rule", "RuleFiles", "RuleSet", "ad_hoc_rule", "load_rules"]
