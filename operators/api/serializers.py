"""Wire shapes of the operators routes (camelCase, URNs as ids)."""

from rest_framework import serializers

from nexa.platform.roles import Role


class LockGrantSerializer(serializers.Serializer):
    subCaseUrn = serializers.CharField(source="sub_case_urn", help_text="urn:nexa:subcase:<uuid>")  # noqa: N815
    lockedBy = serializers.CharField(source="locked_by", help_text="Operator URN of the holder (you).")  # noqa: N815
    fencingToken = serializers.IntegerField(  # noqa: N815
        source="fencing_token",
        help_text="Send as X-Fencing-Token with every write to this sub-case; a newer grant makes it stale.",
    )
    expiresInSeconds = serializers.IntegerField(  # noqa: N815
        source="expires_in_seconds",
        help_text="Lease left; renewed while your socket is connected, or by locking again.",
    )

    class Meta:
        ref_name = "LockGrant"


class LockReleasedSerializer(serializers.Serializer):
    subCaseUrn = serializers.CharField()  # noqa: N815
    lockedBy = serializers.CharField(allow_null=True, help_text="Always null: the sub-case is free.")  # noqa: N815

    class Meta:
        ref_name = "LockReleased"


class ForceUnlockResultSerializer(LockReleasedSerializer):
    previousHolder = serializers.CharField(help_text="Operator URN whose lock was released.")  # noqa: N815

    class Meta:
        ref_name = "ForceUnlockResult"


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=1000, help_text="Why; kept in the audit log.")  # stripped: \S

    class Meta:
        ref_name = "Reason"


class OperatorSerializer(serializers.Serializer):
    operatorUrn = serializers.CharField(source="operator_urn")  # noqa: N815
    displayName = serializers.CharField(source="display_name")  # noqa: N815
    role = serializers.ChoiceField(choices=[role.value for role in Role])
    active = serializers.BooleanField(help_text="False once an ADMIN deactivated the operator.")
    connected = serializers.BooleanField(help_text="A socket of the operator is live.")
    lastSeenAt = serializers.DateTimeField(  # noqa: N815
        source="seen_at", allow_null=True, help_text="Last heartbeat of any socket; null if never connected."
    )
    locksHeld = serializers.ListField(  # noqa: N815
        source="locks_held", child=serializers.CharField(), help_text="Sub-case URNs of the live leases held."
    )

    class Meta:
        ref_name = "Operator"


class OperatorDeactivatedSerializer(serializers.Serializer):
    operatorUrn = serializers.CharField(source="operator_urn")  # noqa: N815
    active = serializers.BooleanField()
    releasedLocks = serializers.ListField(source="released_locks", child=serializers.CharField())  # noqa: N815

    class Meta:
        ref_name = "OperatorDeactivated"


class OperatorReactivatedSerializer(serializers.Serializer):
    operatorUrn = serializers.CharField(source="operator_urn")  # noqa: N815
    active = serializers.BooleanField(help_text="Always true: the operator may work again.")

    class Meta:
        ref_name = "OperatorReactivated"
