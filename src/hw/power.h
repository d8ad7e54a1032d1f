/* How platform devices tell the VM that the guest wants to power off, reset or exit. */
#ifndef KESTREL_HW_POWER_H
#define KESTREL_HW_POWER_H

enum power_event {
	POWER_EVENT_OFF,	/* ACPI S5 */
	POWER_EVENT_RESET,	/* 8042 pulse, port 0xcf9, ACPI reset register */
	POWER_EVENT_EXIT,	/* isa-debug-exit: leave with a status, tests only */
};

struct power_sink {
	void (*event)(void *opaque, enum power_event event, int status);
	void *opaque;
};

static inline void power_signal(const struct power_sink *sink, enum power_event event, int status)
{
	sink->event(sink->opaque, event, status);
}

#endif
