#include "ui/control.h"

const char *run_state_name(enum run_state state)
{
	switch (state) {
	case RUN_STATE_RUNNING:
		return "running";
	case RUN_STATE_PAUSED:
		return "paused";
	case RUN_STATE_SHUTDOWN:
		return "shutdown";
	case RUN_STATE_INTERNAL_ERROR:
		return "internal-error";
	case RUN_STATE_IO_ERROR:
		return "io-error";
	case RUN_STATE_PRELAUNCH:
		return "prelaunch";
	case RUN_STATE_DEBUG:
		return "debug";
	}
	return "running";
}
