#include "hw/rtc.h"

#include "core/vmstate.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Register numbers and bits (MC146818A data sheet). */
#define REG_SECONDS 0x00
#define REG_MINUTES 0x02
#define REG_HOURS 0x04
#define REG_WEEKDAY 0x06
#define REG_DAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d
#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define REG_D_VALID_RAM 0x80

void rtc_init(struct rtc *rtc)
{
	memset(rtc, 0, sizeof(*rtc));
	pthread_mutex_init(&rtc->lock, NULL);
	rtc->cmos[REG_A] = 0x26;	/* 32.768 kHz time base, 1024 Hz rate */
	rtc->cmos[REG_B] = REG_B_24H;	/* BCD, 24-hour: what PC firmware expects */
	rtc->cmos[REG_D] = REG_D_VALID_RAM;
	rtc->now = time;
}

void rtc_set_base(struct rtc *rtc, bool localtime, int64_t offset)
{
	rtc->localtime = localtime;
	rtc->offset = offset;
}

void rtc_destroy(struct rtc *rtc)
{
	pthread_mutex_destroy(&rtc->lock);
}

void rtc_set_byte(struct rtc *rtc, uint8_t index, uint8_t value)
{
	rtc->cmos[index & 0x7f] = value;
}

uint8_t rtc_get_byte(const struct rtc *rtc, uint8_t index)
{
	return rtc->cmos[index & 0x7f];
}

static uint8_t to_bcd(const struct rtc *rtc, int v)
{
	if (rtc->cmos[REG_B] & REG_B_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* The clock registers are computed from host time when read, so they never drift. */
static uint8_t read_reg(struct rtc *rtc, uint8_t reg)
{
	time_t now = rtc->now(NULL) + (time_t)rtc->offset;
	struct tm tm;
	int hour;

	if (rtc->localtime)
		localtime_r(&now, &tm);
	else
		gmtime_r(&now, &tm);
	switch (reg) {
	case REG_SECONDS:
		return to_bcd(rtc, tm.tm_sec);
	case REG_MINUTES:
		return to_bcd(rtc, tm.tm_min);
	case REG_HOURS:
		if (rtc->cmos[REG_B] & REG_B_24H)
			return to_bcd(rtc, tm.tm_hour);
		hour = tm.tm_hour % 12 ? tm.tm_hour % 12 : 12;
		return (uint8_t)(to_bcd(rtc, hour) | (tm.tm_hour >= 12 ? 0x80 : 0));
	case REG_WEEKDAY:
		return to_bcd(rtc, tm.tm_wday + 1);
	case REG_DAY:
		return to_bcd(rtc, tm.tm_mday);
	case REG_MONTH:
		return to_bcd(rtc, tm.tm_mon + 1);
	case REG_YEAR:
		return to_bcd(rtc, tm.tm_year % 100);
	case CMOS_CENTURY:
		return to_bcd(rtc, 19 + tm.tm_year / 100);
	case REG_A:
		return rtc->cmos[REG_A] & 0x7f;	/* never "update in progress" */
	case REG_C: {
		uint8_t v = rtc->cmos[REG_C];	/* read to acknowledge */
		rtc->cmos[REG_C] = 0;
		return v;
	}
	default:
		return rtc->cmos[reg];
	}
}

void rtc_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size)
{
	struct rtc *rtc = dev;

	if (size != 1) {
		if (!is_write)
			memset(data, 0xff, size);
		return;
	}
	pthread_mutex_lock(&rtc->lock);
	if (offset == 0) {
		/* Bit 7 of the index port masks NMIs on real boards; it is not part of the index. */
		if (is_write)
			rtc->index = data[0] & 0x7f;
		else
			data[0] = 0xff;
	} else if (is_write) {
		if (rtc->index == REG_A)
			rtc->cmos[REG_A] = data[0] & 0x7f;
		else if (rtc->index != REG_C && rtc->index != REG_D && rtc->index > REG_YEAR)
			rtc->cmos[rtc->index] = data[0];
		/* Writes to the clock registers set nothing: the clock follows the host. */
	} else {
		data[0] = read_reg(rtc, rtc->index);
	}
	pthread_mutex_unlock(&rtc->lock);
}

/* Version 1 ("mc146818rtc", QEMU's name for the device). */
static int rtc_post_load(void *obj, unsigned version, char *err, size_t errlen)
{
	const struct rtc *rtc = obj;

	(void)version;
	if (rtc->index > 0x7f) {
		snprintf(err, errlen, "index 0x%02x past the 128 CMOS bytes", rtc->index);
		return -1;
	}
	return 0;
}

static const struct vmstate_field rtc_fields[] = {
	VMS_FIELD(struct rtc, index, VMS_U8),
	VMS_ARRAY(struct rtc, cmos, VMS_BYTES, 128),
	VMS_FIELD(struct rtc, offset, VMS_U64),
	VMS_END
};

static const struct vmstate_desc rtc_vmstate = {
	"mc146818rtc", sizeof(struct rtc), 1, 1, rtc_fields, rtc_post_load,
};

int rtc_save(struct rtc *rtc, struct vmstate_out *out, unsigned instance)
{
	int rc;

	pthread_mutex_lock(&rtc->lock);
	rc = vmstate_save(out, &rtc_vmstate, instance, rtc);
	pthread_mutex_unlock(&rtc->lock);
	return rc;
}

int rtc_load(struct rtc *rtc, struct vmstate_in *in)
{
	int rc;

	pthread_mutex_lock(&rtc->lock);
	rc = vmstate_load(in, &rtc_vmstate, rtc);
	pthread_mutex_unlock(&rtc->lock);
	return rc;
}
