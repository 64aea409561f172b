#include <libcryptsetup.h>
