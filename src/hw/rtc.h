/*
 * MC146818 real-time clock and CMOS NVRAM (ports 0x70/0x71).  The clock reads
 * the host's time, in UTC or local time and shifted by an offset (QEMU's
 * -rtc base=utc|localtime|DATE, clock=host); the NVRAM carries what the PC
 * BIOS convention and SeaBIOS read: memory sizes, CPU count, boot order.
 */
#ifndef KESTREL_HW_RTC_H
#define KESTREL_HW_RTC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define RTC_PORT 0x70
#define RTC_NR_PORTS 2
#define RTC_IRQ 8

/* NVRAM offsets (SeaBIOS src/hw/rtc.h, QEMU hw/i386/pc.c). */
#define CMOS_FLOPPY_TYPES 0x10
#define CMOS_EQUIPMENT 0x14
#define CMOS_BASE_MEM_LOW 0x15
#define CMOS_BASE_MEM_HIGH 0x16
#define CMOS_EXT_MEM_LOW 0x17
#define CMOS_EXT_MEM_HIGH 0x18
#define CMOS_EXT_MEM2_LOW 0x30
#define CMOS_EXT_MEM2_HIGH 0x31
#define CMOS_CENTURY 0x32
#define CMOS_MEM_16M_LOW 0x34	/* RAM above 16 MiB, 64 KiB units */
#define CMOS_MEM_16M_HIGH 0x35
#define CMOS_BOOT_FLAG1 0x38	/* third boot device << 4, bit 0: skip the floppy signature */
#define CMOS_BOOT_FLAG2 0x3d	/* second boot device << 4 | first */
#define CMOS_MEM_4G_LOW 0x5b	/* RAM above 4 GiB, 64 KiB units, three bytes */
#define CMOS_SMP_COUNT 0x5f	/* CPUs - 1 */

struct rtc {
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t cmos[128];
	bool localtime;		/* -rtc base=localtime */
	int64_t offset;		/* -rtc base=DATE: seconds added to host time */
	time_t (*now)(time_t *);	/* time(); tests fake it */
};

void rtc_init(struct rtc *rtc);
void rtc_destroy(struct rtc *rtc);
/* -rtc base=: the clock shows host time + offset seconds, as local time or UTC. */
void rtc_set_base(struct rtc *rtc, bool localtime, int64_t offset);
void rtc_set_byte(struct rtc *rtc, uint8_t index, uint8_t value);
uint8_t rtc_get_byte(const struct rtc *rtc, uint8_t index);
void rtc_io(void *dev, uint64_t offset, bool is_write, uint8_t *data, unsigned size);

/* Saved state (core/vmstate.h): the index, CMOS RAM and the clock's offset
 * from host time; local time or UTC is the destination's own -rtc option. */
struct vmstate_out;
struct vmstate_in;
int rtc_save(struct rtc *rtc, struct vmstate_out *out, unsigned instance);
int rtc_load(struct rtc *rtc, struct vmstate_in *in);

#endif
