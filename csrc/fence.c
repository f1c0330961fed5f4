#include <errno.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "barrier.h"

int rmpsc__fence_registered;

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

int rmpsc__fence_register(void)
{
	if (load_relaxed(&rmpsc__fence_registered))
		return 0;
	/* Idempotent: threads racing here both register, and both succeed. */
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0)
		return errno ? errno : ENOSYS;
	store_relaxed(&rmpsc__fence_registered, 1);
	return 0;
}

void rmpsc__fence_on_fork_child(void)
{
	/* Whether the kernel carries the registration into the child's new memory
	 * map is not part of membarrier's contract; registering again is cheap in a
	 * single-threaded child, and if it fails this process keeps full fences. */
	if (!rmpsc__fence_registered)
		return;
	int saved = errno;
	rmpsc__fence_registered = 0;
	if (membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0)
		rmpsc__fence_registered = 1;
	errno = saved;
}

int rmpsc__heavy_barrier(void)
{
	if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0)
		return 0;
	smp_mb();
	return -1;
}
