/*
 * The USB device model shared by host controllers and devices: an address,
 * a configuration, and endpoint 0's control pipe run through its SETUP, DATA
 * and STATUS stages (USB 2.0 §8.5.3) with the standard requests of ch. 9
 * answered here from the device's descriptors; class requests (HID) and the
 * other endpoints go to the device's ops.  A controller calls
 * usb_handle_packet() once per transaction, holding its own lock; devices
 * lock whatever they share with other threads (input events).
 */
#ifndef KESTREL_USB_USB_H
#define KESTREL_USB_USB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Packet identifiers (USB 2.0 table 8-1), as UHCI TDs carry them. */
#define USB_PID_SETUP 0x2d
#define USB_PID_IN 0x69
#define USB_PID_OUT 0xe1

/* usb_handle_packet results below 0: the handshake a device gives instead of data. */
#define USB_RET_NAK (-1)	/* nothing now: the controller retries later */
#define USB_RET_STALL (-2)	/* request or endpoint not supported */
#define USB_RET_BABBLE (-3)	/* more data than the transaction had room for */

/* bmRequestType << 8 | bRequest of the standard requests (USB 2.0 table 9-3). */
#define USB_REQ_GET_STATUS_DEV 0x8000
#define USB_REQ_GET_STATUS_IF 0x8100
#define USB_REQ_GET_STATUS_EP 0x8200
#define USB_REQ_CLEAR_FEATURE_DEV 0x0001
#define USB_REQ_CLEAR_FEATURE_IF 0x0101
#define USB_REQ_CLEAR_FEATURE_EP 0x0201
#define USB_REQ_SET_FEATURE_DEV 0x0003
#define USB_REQ_SET_FEATURE_EP 0x0203
#define USB_REQ_SET_ADDRESS 0x0005
#define USB_REQ_GET_DESCRIPTOR 0x8006
#define USB_REQ_GET_DESCRIPTOR_IF 0x8106
#define USB_REQ_GET_CONFIGURATION 0x8008
#define USB_REQ_SET_CONFIGURATION 0x0009
#define USB_REQ_GET_INTERFACE 0x810a
#define USB_REQ_SET_INTERFACE 0x010b

#define USB_DT_DEVICE 1
#define USB_DT_CONFIG 2
#define USB_DT_STRING 3

#define USB_CTRL_MAX 256	/* the longest control data stage answered (descriptors) */

/* The SETUP packet's 8 bytes (USB 2.0 §9.3), little-endian on the wire. */
struct usb_setup {
	uint8_t request_type;
	uint8_t request;
	uint16_t value;
	uint16_t index;
	uint16_t length;
};

/* A device's descriptors: the 18-byte device descriptor, one configuration, strings. */
struct usb_desc {
	const uint8_t *device;
	const uint8_t *config;	/* configuration + interface + class + endpoint descriptors */
	size_t config_len;
	const char *const *strings;	/* strings[i] answers string index i (i >= 1) */
	unsigned nr_strings;
};

struct usb_device;

struct usb_device_ops {
	/*
	 * A request the standard set does not cover: returns the data-stage
	 * length written to data (at most len), or USB_RET_STALL.  For a host
	 * to device request data holds what the host sent.
	 */
	int (*control)(struct usb_device *dev, const struct usb_setup *s, uint8_t *data,
		       unsigned len);
	/* Endpoint ep (1-15) IN: bytes written to buf (at most len), or USB_RET_*. */
	int (*data_in)(struct usb_device *dev, unsigned ep, uint8_t *buf, unsigned len);
	void (*reset)(struct usb_device *dev);
};

enum usb_ctrl_stage {
	USB_CTRL_IDLE,		/* waiting for SETUP */
	USB_CTRL_DATA_IN,	/* device to host data, then an OUT status */
	USB_CTRL_DATA_OUT,	/* host to device data, then an IN status */
	USB_CTRL_STATUS_IN,	/* no data stage: an IN status */
};

struct usb_device {
	const char *product;	/* QEMU's product_desc, for info usb */
	char id[32];		/* -device id=, "" if none */
	const struct usb_desc *desc;
	const struct usb_device_ops *ops;
	unsigned speed_mbps;	/* 12: full speed */
	uint8_t addr;
	uint8_t config;		/* 0: not configured (USB 2.0 §9.1.1.5) */
	uint8_t pending_addr;	/* SET_ADDRESS takes effect after its status stage (§9.4.6) */
	bool remote_wakeup;
	uint64_t now_ms;	/* the controller's clock, set before each transaction */
	/* Endpoint 0 */
	enum usb_ctrl_stage stage;
	struct usb_setup setup;
	bool stalled;		/* this control transfer ends in STALL */
	uint8_t buf[USB_CTRL_MAX];
	unsigned len, pos;
};

/* Back to the state after a bus reset (USB 2.0 §9.1.2): address 0, unconfigured. */
void usb_device_reset(struct usb_device *dev);

/*
 * One transaction: pid is USB_PID_*, ep the endpoint, buf holds len bytes
 * (SETUP/OUT data) or receives up to len bytes (IN).  Returns the bytes
 * transferred or USB_RET_*.
 */
int usb_handle_packet(struct usb_device *dev, int pid, unsigned ep, uint8_t *buf, unsigned len);

/* "QEMU USB Tablet" etc.; copies a string descriptor for index i into out (USB 2.0 §9.6.7). */
int usb_string_desc(const struct usb_desc *d, unsigned i, uint8_t *out, unsigned max);

#endif
