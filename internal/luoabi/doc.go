// Package luoabi holds what a LUO kernel, and a test that judges kernels,
// needs of the uapi beyond what package liveupdate gives its users: the
// kernel's checks of a raw request (get_user of the size field, the
// min_size test, copy_struct_from_user, the length copied back), the
// smallest size each command accepts, the direction a session command
// applies to, and the _IO encoding of every architecture.
//
// The fake kernel (package liveupdate/fake) judges requests with these
// functions, and the conformance suite builds malformed requests from them,
// so both follow one model of include/uapi/linux/liveupdate.h and
// kernel/liveupdate/luo_core.c, luo_session.c.
package luoabi
