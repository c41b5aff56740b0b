"""The trio import at idle priority gives the policy back."""


def test_idle_priority_is_temporary():
    import os

    from shim.process.scheduling import at_idle_priority

    seen = at_idle_priority(lambda: os.sched_getscheduler(0))
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    # Only root is sure to get its policy back, so only root goes idle (see the module).
    assert seen == (os.SCHED_IDLE if os.geteuid() == 0 else os.SCHED_OTHER)
