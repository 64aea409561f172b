#ifndef VIGIL_SYSTEM_H
#define VIGIL_SYSTEM_H

/// ioctl(2) with a pointer argument: Swift cannot call the variadic C function directly.
int vigil_ioctl_pointer(int fd, unsigned long request, void *argument);

#endif
