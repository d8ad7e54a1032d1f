#include "hw/acpi_pm.h"

#include "core/vmstate.h"

#include <string.h>
#include <time.h>

#define PM1_CNT_SCI_EN 0x0001
#define PM1_CNT_SLP_TYP_SHIFT 10
#define PM1_CNT_SLP_TYP_MASK 0x1c00
#define PM1_CNT_SLP_EN 0x2000
#define PM1_PWRBTN 0x0100	/* PWRBTN_STS / PWRBTN_EN (ACPI 6.4 §4.8.3.1) */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void acpi_pm_init(struct acpi_pm *pm, const struct power_sink *power,
		  void (*set_sci)(void *opaque, bool level), void *sci_opaque)
{
	memset(pm, 0, sizeof(*pm));
	pthread_mutex_init(&pm->lock, NULL);
	pm->power = *power;
	pm->set_sci = set_sci;
	pm->sci_opaque = sci_opaque;
	/* No SMI command port in the FADT means the guest finds ACPI mode already on. */
	pm->pm1_cnt = PM1_CNT_SCI_EN;
	pm->start_ns = now_ns();
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	pthread_mutex_destroy(&pm->lock);
}

/* The SCI is level triggered: asserted while an enabled status bit is set. */
static void pm_update_sci(struct acpi_pm *pm)
{
	bool level = (pm->pm1_sts & pm->pm1_en) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		pm->set_sci(pm->sci_opaque, level);
	}
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	if (pm->pm1_en & PM1_PWRBTN) {
		pm->pm1_sts |= PM1_PWRBTN;
		pm_update_sci(pm);
	}
	pthread_mutex_unlock(&pm->lock);
}

static uint32_t pm_timer(const struct acpi_pm *pm)
{
	uint64_t ns = now_ns() - pm->start_ns;
	return (uint32_t)((unsigned __int128)ns * ACPI_PM_TIMER_HZ / 1000000000ULL) & 0xffffff;
}

/* The block as one little-endian 12-byte register file, read at any width. */
static void pm_read(struct acpi_pm *pm, uint64_t offset, uint8_t *data, unsigned size)
{
	uint8_t regs[ACPI_PM_LEN];
	uint32_t tmr = pm_timer(pm);

	memcpy(regs + 0, &pm->pm1_sts, 2);
	memcpy(regs + 2, &pm->pm1_en, 2);
	memcpy(regs + 4, &pm->pm1_cnt, 2);
	memset(regs + 6, 0, 2);
	memcpy(regs + 8, &tmr, 4);
	memset(data, 0, size);
	for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++)
		data[i] = regs[offset + i];
}

static void pm_write_cnt(struct acpi_pm *pm, uint16_t value)
{
	unsigned slp_typ = (value & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;

	/* SLP_EN is write-only and SCI_EN is fixed to 1 (ACPI 6.4 §4.8.3.2.1). */
	pm->pm1_cnt = (uint16_t)((value & ~PM1_CNT_SLP_EN) | PM1_CNT_SCI_EN);
	if ((value & PM1_CNT_SLP_EN) && slp_typ == ACPI_PM_S5_SLP_TYP)
		power_signal(&pm->power, POWER_EVENT_OFF, 0);
}

void acpi_pm_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct acpi_pm *pm = dev;
	uint16_t v16 = 0;

	pthread_mutex_lock(&pm->lock);
	if (!is_write) {
		pm_read(pm, offset, data, size);
		goto out;
	}
	memcpy(&v16, data, size >= 2 ? 2 : 1);
	switch (offset) {
	case 0:	/* PM1_STS: write one to clear */
		pm->pm1_sts &= (uint16_t)~v16;
		if (size == 4) {
			memcpy(&v16, data + 2, 2);
			pm->pm1_en = v16;
		}
		break;
	case 2:
		pm->pm1_en = v16;
		break;
	case 4:
		pm_write_cnt(pm, v16);
		break;
	default:
		break;	/* the timer is read-only */
	}
	pm_update_sci(pm);
out:
	pthread_mutex_unlock(&pm->lock);
}

/* Version 1: what the guest can see, not the host clock behind the timer. */
struct pm_saved {
	uint16_t pm1_sts, pm1_en, pm1_cnt;
	uint64_t timer_ns;	/* time since the timer started */
};

static const struct vmstate_field pm_fields[] = {
	VMS_FIELD(struct pm_saved, pm1_sts, VMS_U16),
	VMS_FIELD(struct pm_saved, pm1_en, VMS_U16),
	VMS_FIELD(struct pm_saved, pm1_cnt, VMS_U16),
	VMS_FIELD(struct pm_saved, timer_ns, VMS_U64),
	VMS_END
};

static const struct vmstate_desc pm_vmstate = {
	"piix4_pm", sizeof(struct pm_saved), 1, 1, pm_fields, NULL,
};

int acpi_pm_save(struct acpi_pm *pm, struct vmstate_out *out, unsigned instance)
{
	struct pm_saved st;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&pm->lock);
	st.pm1_sts = pm->pm1_sts;
	st.pm1_en = pm->pm1_en;
	st.pm1_cnt = pm->pm1_cnt;
	st.timer_ns = now_ns() - pm->start_ns;
	pthread_mutex_unlock(&pm->lock);
	return vmstate_save(out, &pm_vmstate, instance, &st);
}

int acpi_pm_load(struct acpi_pm *pm, struct vmstate_in *in)
{
	struct pm_saved st;

	memset(&st, 0, sizeof(st));
	if (vmstate_load(in, &pm_vmstate, &st) < 0)
		return -1;
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = st.pm1_sts;
	pm->pm1_en = st.pm1_en;
	pm->pm1_cnt = st.pm1_cnt;
	pm->start_ns = now_ns() - st.timer_ns;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
	return 0;
}
