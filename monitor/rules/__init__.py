"""Topic rules: files -> parsed queries -> matches with explanations."""

from monitor.rules.load import Rule, RuleSet, ad_hoc_rule, load_rules
from monitor.rules.match import Document

__all__ = ["Document", "Rule", "RuleSet", "ad_hoc_rule", "load_rules"]
