/*
 * QMP input commands (qapi/ui.json): send-key, input-send-event and
 * query-mice, with QEMU 7.2's argument errors.  Events reach the VM's
 * devices through core/input.h.
 */
#include <stdio.h>
#include <string.h>

#include "core/input.h"
#include "core/keycodes.h"
#include "ui/control.h"
#include "ui/qmp_input.h"

#define EVENTS_MAX 256		/* one command's events; more is refused */

/* Members of one object as the QAPI visitor checks them. */
enum m_type { M_STR, M_INT, M_BOOL, M_OBJ };
struct member {
	const char *name;
	enum m_type type;
};

static const char *type_word(enum m_type t)
{
	static const char *const words[] = { "string", "integer", "boolean", "object" };

	return words[t];
}

static bool has_type(struct json_object *v, enum m_type t)
{
	switch (t) {
	case M_STR: return json_object_is_type(v, json_type_string);
	case M_INT: return json_object_is_type(v, json_type_int);
	case M_BOOL: return json_object_is_type(v, json_type_boolean);
	case M_OBJ: return json_object_is_type(v, json_type_object);
	}
	return false;
}

/*
 * Checks obj (at path) has exactly the members listed, of their types, in
 * the visitor's order: a member missing or mistyped first, then one not
 * expected.  0, or -1 with QEMU's message in err.
 */
static int check_members(struct json_object *obj, const char *path, const struct member *m,
			 unsigned n, struct qmp_error *err)
{
	struct json_object *v;

	for (unsigned i = 0; i < n; i++) {
		if (!json_object_object_get_ex(obj, m[i].name, &v))
			return qmp_fail(err, "GenericError", "Parameter '%s.%s' is missing", path,
					m[i].name);
		if (!has_type(v, m[i].type))
			return qmp_fail(err, "GenericError",
					"Invalid parameter type for '%s.%s', expected: %s", path,
					m[i].name, type_word(m[i].type));
	}
	json_object_object_foreach(obj, key, val) {
		bool known = false;

		(void)val;
		for (unsigned i = 0; i < n && !known; i++)
			known = !strcmp(key, m[i].name);
		if (!known)
			return qmp_fail(err, "GenericError", "Parameter '%s.%s' is unexpected", path,
					key);
	}
	return 0;
}

static int bad_value(struct qmp_error *err, const char *name, const char *val)
{
	return qmp_fail(err, "GenericError", "Parameter '%s' does not accept value '%s'", name, val);
}

/*
 * A KeyValue ({type: number|qcode, data}) at path to a qnum.  A number
 * reaches the guest through its QKeyCode as in QEMU (qemu_input_key_number_
 * to_qcode): one no key has, or past 0xff, is accepted and dropped (*qnum 0,
 * which the devices ignore).
 */
static int key_value(struct json_object *kv, const char *path, unsigned *qnum,
		     struct qmp_error *err)
{
	static const struct member num[] = { { "type", M_STR }, { "data", M_INT } };
	static const struct member qcode[] = { { "type", M_STR }, { "data", M_STR } };
	struct json_object *t, *d;
	const char *type;

	if (!json_object_is_type(kv, json_type_object))
		return qmp_fail(err, "GenericError", "Invalid parameter type for '%s', expected: object",
				path);
	if (!json_object_object_get_ex(kv, "type", &t))
		return qmp_fail(err, "GenericError", "Parameter '%s.type' is missing", path);
	if (!json_object_is_type(t, json_type_string))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for '%s.type', expected: string", path);
	type = json_object_get_string(t);
	if (strcmp(type, "number") && strcmp(type, "qcode"))
		return bad_value(err, "type", type);
	if (check_members(kv, path, strcmp(type, "number") ? qcode : num, 2, err) < 0)
		return -1;
	json_object_object_get_ex(kv, "data", &d);
	if (!strcmp(type, "number")) {
		int64_t n = json_object_get_int64(d);

		*qnum = n > 0 && n <= 0xff && keycodes_name((unsigned)n) ? (unsigned)n : 0;
		return 0;
	}
	const char *name = json_object_get_string(d);
	if (!keycodes_is_qcode(name, strlen(name)))
		return bad_value(err, "data", name);
	*qnum = (unsigned)keycodes_qnum(name, strlen(name));
	return 0;
}

static bool vm_running(const struct qmp_session *s)
{
	return !s->ctl->run_state || s->ctl->run_state(s->ctl->opaque) == RUN_STATE_RUNNING;
}

int qmp_send_key(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		 struct qmp_error *err)
{
	const struct control *ctl = s->ctl;
	struct json_object *keys, *hold;
	unsigned qnums[EVENTS_MAX], n;
	char path[32];

	json_object_object_get_ex(args, "keys", &keys);
	if (!json_object_is_type(keys, json_type_array))
		return qmp_fail(err, "GenericError", "Invalid parameter type for 'keys', expected: array");
	n = (unsigned)json_object_array_length(keys);
	if (n > EVENTS_MAX)
		return qmp_fail(err, "GenericError", "send-key takes at most %u keys", EVENTS_MAX);
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "keys[%u]", i);
		if (key_value(json_object_array_get_idx(keys, i), path, &qnums[i], err) < 0)
			return -1;
	}
	/* QEMU's default: its 10 ms keyboard delay; a hold-time is taken as uint32 ms. */
	unsigned hold_ms = json_object_object_get_ex(args, "hold-time", &hold) ?
		(unsigned)json_object_get_int64(hold) : 10;
	/* QEMU drops input while the VM is stopped; so do we. */
	if (ctl->input && vm_running(s)) {
		if (ctl->send_keys) {
			ctl->send_keys(ctl->opaque, qnums, n, hold_ms);
		} else {
			for (unsigned i = 0; i < n; i++)
				input_key(ctl->input, qnums[i], true);
			for (unsigned i = n; i-- > 0;)
				input_key(ctl->input, qnums[i], false);
		}
	}
	*ret = json_object_new_object();
	return *ret ? 0 : qmp_oom(err);
}

/* One input-send-event event, checked and decoded. */
struct ev {
	enum { EV_KEY, EV_BTN, EV_REL, EV_ABS } kind;
	bool down;
	unsigned qnum, button;	/* button: enum input_button */
	bool y;
	int64_t value;
};

static int button_bit(const char *name, unsigned *bit)
{
	static const char *const names[] = { "left", "middle", "right", "wheel-up", "wheel-down",
					     "side", "extra", "wheel-left", "wheel-right" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i])) {
			*bit = i < 7 ? 1u << i : 0;	/* no horizontal wheel on PS/2 */
			return 0;
		}
	return -1;
}

static int decode_event(struct json_object *e, unsigned i, struct ev *ev, struct qmp_error *err)
{
	static const char *const kinds[] = { "key", "btn", "rel", "abs" };
	static const struct member key_m[] = { { "down", M_BOOL }, { "key", M_OBJ } };
	static const struct member btn_m[] = { { "down", M_BOOL }, { "button", M_STR } };
	static const struct member move_m[] = { { "axis", M_STR }, { "value", M_INT } };
	static const struct member ev_m[] = { { "type", M_STR }, { "data", M_OBJ } };
	struct json_object *t, *d, *v;
	char path[48], dpath[64];
	const char *s;

	snprintf(path, sizeof(path), "events[%u]", i);
	if (!json_object_is_type(e, json_type_object))
		return qmp_fail(err, "GenericError", "Invalid parameter type for '%s', expected: object",
				path);
	if (!json_object_object_get_ex(e, "type", &t))
		return qmp_fail(err, "GenericError", "Parameter '%s.type' is missing", path);
	if (!json_object_is_type(t, json_type_string))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for '%s.type', expected: string", path);
	s = json_object_get_string(t);
	unsigned k = 0;
	while (k < 4 && strcmp(s, kinds[k]))
		k++;
	if (k == 4)
		return bad_value(err, "type", s);
	if (check_members(e, path, ev_m, 2, err) < 0)
		return -1;
	ev->kind = k;
	json_object_object_get_ex(e, "data", &d);
	snprintf(dpath, sizeof(dpath), "%s.data", path);
	if (k == EV_KEY) {
		if (check_members(d, dpath, key_m, 2, err) < 0)
			return -1;
		json_object_object_get_ex(d, "down", &v);
		ev->down = json_object_get_boolean(v);
		json_object_object_get_ex(d, "key", &v);
		snprintf(path, sizeof(path), "events[%u].data.key", i);
		return key_value(v, path, &ev->qnum, err);
	}
	if (k == EV_BTN) {
		if (check_members(d, dpath, btn_m, 2, err) < 0)
			return -1;
		json_object_object_get_ex(d, "down", &v);
		ev->down = json_object_get_boolean(v);
		json_object_object_get_ex(d, "button", &v);
		if (button_bit(json_object_get_string(v), &ev->button) < 0)
			return bad_value(err, "button", json_object_get_string(v));
		return 0;
	}
	if (check_members(d, dpath, move_m, 2, err) < 0)
		return -1;
	json_object_object_get_ex(d, "axis", &v);
	s = json_object_get_string(v);
	if (strcmp(s, "x") && strcmp(s, "y"))
		return bad_value(err, "axis", s);
	ev->y = !strcmp(s, "y");
	json_object_object_get_ex(d, "value", &v);
	ev->value = json_object_get_int64(v);
	return 0;
}

/* Whether a handler takes this kind of event (QEMU's qemu_input_find_handler). */
static bool have_handler(struct input *in, int kind)
{
	unsigned want = kind == EV_KEY ? INPUT_KEYBOARD : kind == EV_REL ? INPUT_MOUSE_REL :
			kind == EV_ABS ? INPUT_MOUSE_ABS : INPUT_MOUSE_REL | INPUT_MOUSE_ABS;
	bool found = false;

	if (!in)
		return false;
	pthread_mutex_lock(&in->lock);
	for (unsigned i = 0; i < in->nr && !found; i++)
		found = in->handlers[i].kinds & want;
	pthread_mutex_unlock(&in->lock);
	return found;
}

static int clamp_int(int64_t v)
{
	return v > 1 << 24 ? 1 << 24 : v < -(1 << 24) ? -(1 << 24) : (int)v;
}

/* Delivers decoded events: keys at once, pointer changes summed into one sync, as QEMU's. */
static void deliver(struct input *in, const struct ev *evs, unsigned n)
{
	int dx = 0, dy = 0, dz = 0, x = -1, y = -1;
	bool moved = false;
	unsigned buttons;

	pthread_mutex_lock(&in->lock);
	buttons = in->buttons;
	pthread_mutex_unlock(&in->lock);
	for (unsigned i = 0; i < n; i++) {
		const struct ev *e = &evs[i];

		switch (e->kind) {
		case EV_KEY:
			input_key(in, e->qnum, e->down);
			break;
		case EV_BTN:
			if (e->down && e->button == INPUT_BTN_WHEEL_UP)
				dz--;
			else if (e->down && e->button == INPUT_BTN_WHEEL_DOWN)
				dz++;
			buttons = e->down ? buttons | e->button : buttons & ~e->button;
			moved = true;
			break;
		case EV_REL:
			*(e->y ? &dy : &dx) = clamp_int(*(e->y ? &dy : &dx) + (int64_t)clamp_int(e->value));
			moved = true;
			break;
		case EV_ABS:
			*(e->y ? &y : &x) = e->value < 0 ? 0 : e->value > INPUT_ABS_MAX ? INPUT_ABS_MAX :
					    (int)e->value;
			moved = true;
			break;
		}
	}
	buttons &= ~(unsigned)(INPUT_BTN_WHEEL_UP | INPUT_BTN_WHEEL_DOWN);
	pthread_mutex_lock(&in->lock);
	in->buttons = buttons;
	pthread_mutex_unlock(&in->lock);
	if (!moved)
		return;
	if (x >= 0 || y >= 0)	/* an axis not given stays at the centre */
		input_pointer(in, x < 0 ? INPUT_ABS_MAX / 2 : x, y < 0 ? INPUT_ABS_MAX / 2 : y,
			      INPUT_ABS_MAX + 1, INPUT_ABS_MAX + 1, dz, buttons);
	else
		input_pointer_rel(in, dx, dy, dz, buttons);
}

int qmp_input_send_event(struct qmp_session *s, struct json_object *args,
			 struct json_object **ret, struct qmp_error *err)
{
	struct input *in = s->ctl->input;
	struct json_object *events, *dev;
	static struct ev evs[EVENTS_MAX];	/* main thread only */
	unsigned n;

	json_object_object_get_ex(args, "events", &events);
	if (!json_object_is_type(events, json_type_array))
		return qmp_fail(err, "GenericError",
				"Invalid parameter type for 'events', expected: array");
	n = (unsigned)json_object_array_length(events);
	if (n > EVENTS_MAX)
		return qmp_fail(err, "GenericError", "input-send-event takes at most %u events",
				EVENTS_MAX);
	for (unsigned i = 0; i < n; i++)
		if (decode_event(json_object_array_get_idx(events, i), i, &evs[i], err) < 0)
			return -1;
	/* Kestrel's consoles have no device id to route to (head alone is ignored, as in QEMU). */
	if (json_object_object_get_ex(args, "device", &dev))
		return qmp_fail(err, "DeviceNotFound", "Device '%s' not found",
				json_object_get_string(dev));
	if (!vm_running(s))
		return qmp_fail(err, "GenericError", "VM not running");
	static const char *const kinds[] = { "key", "btn", "rel", "abs" };
	for (unsigned i = 0; i < n; i++)
		if (!have_handler(in, evs[i].kind))
			return qmp_fail(err, "GenericError", "Input handler not found for event type %s",
					kinds[evs[i].kind]);
	if (n)
		deliver(in, evs, n);
	*ret = json_object_new_object();
	return *ret ? 0 : qmp_oom(err);
}

int qmp_query_mice(struct qmp_session *s, struct json_object *args, struct json_object **ret,
		   struct qmp_error *err)
{
	struct input_mouse_info mice[INPUT_MAX_HANDLERS];
	unsigned n = s->ctl->input ? input_mice(s->ctl->input, mice, INPUT_MAX_HANDLERS) : 0;
	struct json_object *list = json_object_new_array();
	bool ok = list != NULL;

	(void)args;
	for (unsigned i = 0; i < n; i++) {
		struct json_object *m = qmp_new_obj(&ok);

		qmp_put(&ok, m, "index", json_object_new_int(mice[i].index));
		qmp_put(&ok, m, "name", json_object_new_string(mice[i].name));
		qmp_put(&ok, m, "current", json_object_new_boolean(mice[i].current));
		qmp_put(&ok, m, "absolute", json_object_new_boolean(mice[i].absolute));
		qmp_append(&ok, list, m);
	}
	return qmp_finish(ok, list, ret, err);
}

const struct qmp_arg qmp_send_key_args[] = {
	{ "keys", QMP_ARG_ANY, false },
	{ "hold-time", QMP_ARG_INT, true },
	{ NULL, 0, false },
};

const struct qmp_arg qmp_input_send_event_args[] = {
	{ "device", QMP_ARG_STR, true },
	{ "head", QMP_ARG_INT, true },
	{ "events", QMP_ARG_ANY, false },
	{ NULL, 0, false },
};
