/*
 * The ACPI fixed-hardware power management block the FADT points at (PIIX4
 * layout, at QEMU pc's port 0x600): PM1 event and control registers, so the
 * guest can power off (S5), and the PM timer.
 */
#ifndef KESTREL_HW_ACPI_PM_H
#define KESTREL_HW_ACPI_PM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hw/power.h"

#define ACPI_PM_BASE 0x600
#define ACPI_PM1_EVT_OFFSET 0	/* status (2 bytes) + enable (2 bytes) */
#define ACPI_PM1_CNT_OFFSET 4	/* 2 bytes */
#define ACPI_PM_TMR_OFFSET 8	/* 4 bytes */
#define ACPI_PM_LEN 12
#define ACPI_PM_SCI_IRQ 9
#define ACPI_PM_TIMER_HZ 3579545	/* ACPI 6.4 §4.8.3.3: the PM timer runs at 3.579545 MHz */

/* SLP_TYP of S5; the DSDT's \_S5 package must name the same value (acpi_test checks). */
#define ACPI_PM_S5_SLP_TYP 5

struct acpi_pm {
	pthread_mutex_t lock;
	struct power_sink power;
	void (*set_sci)(void *opaque, bool level);	/* the SCI interrupt line */
	void *sci_opaque;
	bool sci_level;
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint64_t start_ns;
};

void acpi_pm_init(struct acpi_pm *pm, const struct power_sink *power,
		  void (*set_sci)(void *opaque, bool level), void *sci_opaque);

/*
 * The power button was pressed (QMP system_powerdown): sets PWRBTN_STS and
 * raises the SCI if the guest enabled the button, as PIIX4 PM does.
 */
void acpi_pm_power_button(struct acpi_pm *pm);
void acpi_pm_destroy(struct acpi_pm *pm);

/* Saved state (core/vmstate.h): PM1 registers and the timer's elapsed time, so
 * the destination's PM timer goes on from where the source's was. */
struct vmstate_out;
struct vmstate_in;
int acpi_pm_save(struct acpi_pm *pm, struct vmstate_out *out, unsigned instance);
int acpi_pm_load(struct acpi_pm *pm, struct vmstate_in *in);
void acpi_pm_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

#endif
