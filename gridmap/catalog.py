"""Rules that vary, as data: responder kinds, volunteer skills, roles and who may see what."""

# kind → (中文, English). Dispatch and the import border both read this table.
RESPONDER_KINDS = {
    "police": ("民警", "Police"),
    "auxiliary_police": ("辅警", "Auxiliary police"),
    "mediator": ("人民调解员", "Mediator"),
    "property_management": ("物业", "Property management"),
    "utility": ("水电气热维修", "Utility repair"),
    "medical": ("医疗", "Medical"),
    "legal": ("法律服务", "Legal aid"),
    "fire": ("消防", "Fire service"),
}

VOLUNTEER_SKILLS = ("理发", "磨刀", "维修", "义诊", "家电维修", "法律咨询", "心理疏导", "助老", "代购")

# Which roles see personal contact data unmasked. Everyone else (residents, anonymous
# callers) sees 138****1234. Residents' and party members' records are never shown to them.
SEES_FULL_PHONES = frozenset({"admin", "dispatcher", "grid_worker"})
SEES_PERSONAL_DATA = frozenset({"admin", "grid_worker"})
