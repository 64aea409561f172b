#include "vigil_system.h"
#include <sys/ioctl.h>

int vigil_ioctl_pointer(int fd, unsigned long request, void *argument) {
    return ioctl(fd, request, argument);
}
