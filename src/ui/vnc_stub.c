/* The VNC server's entry points in a build without libvncserver. */
#include <json-c/json.h>

#include "ui/vnc.h"

bool vnc_built_in(void)
{
	return false;
}

struct vnc *vnc_start(const struct vnc_options *o, struct display *d, struct input *in,
		      vnc_event_fn event, void *opaque, char *err, size_t errlen)
{
	snprintf(err, errlen, "VNC is not built in (Kestrel was built without libvncserver)");
	return NULL;
}

void vnc_stop(struct vnc *v)
{
}

int vnc_port(const struct vnc *v)
{
	return -1;
}

int vnc_set_password(struct vnc *v, const char *pw, char *err, size_t errlen)
{
	snprintf(err, errlen, "Could not set password");
	return -1;
}

struct json_object *vnc_query(struct vnc *v)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "enabled", json_object_new_boolean(0));
	return o;
}

void vnc_info(struct vnc *v, FILE *out)
{
	fprintf(out, "default:\n  not started\n");
}
