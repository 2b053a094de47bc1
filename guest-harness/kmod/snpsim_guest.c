// SPDX-License-Identifier: GPL-2.0-only
/*
 * snpsim guest module: the guest half of the snpsim differential harness for SEV-SNP AP Creation.
 *
 * It loads only in an SEV-SNP guest running at VMPL0 whose hypervisor offers AP Creation, and
 * serves kABI v1 (snpsim_kabi.h) on /sys/kernel/debug/snpsim/ctl for the snpsim agent.
 * See README.md for the GHCB strategy, the NMI window and the safety rules.
 */
#define pr_fmt(fmt) "snpsim: " fmt

#include <linux/cc_platform.h>
#include <linux/debugfs.h>
#include <linux/fs.h>
#include <linux/minmax.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <asm/msr.h>
#include <asm/sev.h>
#include <asm/sev-common.h>
#include <asm/svm.h>

#include "snpsim.h"
#include "snpsim_insn.h"

/* SNP needs GHCB protocol version 2 ([LX] arch/x86/include/asm/sev.h GHCB_PROTOCOL_MAX). */
#define SNPSIM_GHCB_VERSION_MAX 2
/* AP Creation NAE exit code and DESTROY request ([LX] arch/x86/include/uapi/asm/svm.h). */
static_assert(SVM_VMGEXIT_AP_CREATION == 0x80000013 && SVM_VMGEXIT_AP_DESTROY == 2);
static_assert(MSR_AMD64_SEV == 0xc0010131);

struct snpsim_platform snpsim_platform;

/* One operation at a time, module-wide: a second caller gets SNPSIM_ST_BUSY. */
static DEFINE_MUTEX(snpsim_op_lock);
static struct dentry *snpsim_dir;

struct snpsim_session {
	struct mutex resp_lock;
	struct snpsim_kresp resp;
	bool have_resp;
	struct snpsim_page *h[SNPSIM_HANDLES];	/* under snpsim_op_lock */
};

/* ---- operations ---- */

static struct snpsim_result snpsim_handle(struct snpsim_session *s, u64 h, struct snpsim_page **p)
{
	if (h >= SNPSIM_HANDLES || !s->h[h])
		return snpsim_refuse(SNPSIM_ST_BAD_HANDLE, SNPSIM_R_NONE);
	*p = s->h[h];
	return snpsim_ok();
}

static struct snpsim_result snpsim_op_alloc(struct snpsim_session *s, const u64 *a, u64 *v)
{
	struct snpsim_result res;
	struct snpsim_page *p;

	if (a[0] >= SNPSIM_HANDLES || s->h[a[0]])
		return snpsim_refuse(SNPSIM_ST_BAD_HANDLE, SNPSIM_R_NONE);
	p = snpsim_page_alloc(a[1], a[2], &res);
	if (!p)
		return res;
	s->h[a[0]] = p;
	v[0] = p->pa;
	return res;
}

static struct snpsim_result snpsim_op_ap_creation(struct snpsim_session *s, const u64 *a, u64 *v)
{
	struct snpsim_nae nae = {
		.exit_code = a[0], .info1 = a[1], .info2 = a[2], .rax = a[3], .valid = (u32)a[4],
	};
	struct snpsim_page *p = NULL;
	struct snpsim_result res;
	u64 flags = a[5];

	if (a[4] & ~(u64)SNPSIM_VALID_ALL ||
	    flags & ~(u64)(SNPSIM_APC_INFO2_FROM_H | SNPSIM_APC_RAX_FROM_H))
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	if (flags) {
		res = snpsim_handle(s, a[6], &p);
		if (res.status)
			return res;
	}
	if (flags & SNPSIM_APC_INFO2_FROM_H)
		nae.info2 = p->pa;
	if (flags & SNPSIM_APC_RAX_FROM_H)
		nae.rax = p->sev_features;

	/*
	 * Anything but an AP Creation DESTROY (request = SW_EXITINFO1[15:0] = 2) may make the
	 * hypervisor run the page at SW_EXITINFO2 on the vCPU at SW_EXITINFO1[63:32].
	 */
	if (nae.exit_code == SVM_VMGEXIT_AP_CREATION &&
	    (nae.info1 & 0xffff) != SVM_VMGEXIT_AP_DESTROY)
		snpsim_pages_referenced_by(nae.info2, (u32)(nae.info1 >> 32));

	return snpsim_nae_call(&nae, &v[0], &v[1]);
}

static struct snpsim_result snpsim_op_hv_features(u64 *v)
{
	int err = snpsim_msr_protocol(GHCB_MSR_HV_FT_REQ, GHCB_MSR_HV_FT_RESP, &v[0]);

	/* A wrong response code is an outcome to report, not an error: v[0] shows it raw. */
	if (err == -EAGAIN)
		return snpsim_fail(EAGAIN, SNPSIM_R_NMI);
	v[1] = GHCB_MSR_HV_FT_RESP_VAL(v[0]);
	return snpsim_ok();
}

static struct snpsim_result snpsim_op_sev_info(u64 *v)
{
	int err = snpsim_msr_protocol(GHCB_MSR_SEV_INFO_REQ, GHCB_MSR_SEV_INFO_RESP, &v[0]);

	if (err == -EAGAIN)
		return snpsim_fail(EAGAIN, SNPSIM_R_NMI);
	/* [63:48] max version, [47:32] min version, [31:24] C-bit ([LX] sev-common.h). */
	v[1] = GHCB_MSR_PROTO_MAX(v[0]);
	v[2] = GHCB_MSR_PROTO_MIN(v[0]);
	v[3] = (v[0] >> 24) & 0xff;
	return snpsim_ok();
}

static struct snpsim_result snpsim_dispatch(struct snpsim_session *s, u32 op, const u64 *a, u64 *v)
{
	struct snpsim_result res;
	struct snpsim_page *p;

	if (op < SNPSIM_OP_HV_FEATURES || op > SNPSIM_OP_VMSA_FREE)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	switch (op) {
	case SNPSIM_OP_HV_FEATURES:
		return snpsim_op_hv_features(v);
	case SNPSIM_OP_SEV_INFO:
		return snpsim_op_sev_info(v);
	case SNPSIM_OP_VMSA_ALLOC:
		return snpsim_op_alloc(s, a, v);
	case SNPSIM_OP_AP_CREATION:
		return snpsim_op_ap_creation(s, a, v);
	case SNPSIM_OP_CPU_APIC:
		return snpsim_cpu_apic(a[0], &v[0]);
	case SNPSIM_OP_INIT_SIPI:
		return snpsim_init_sipi(a[0], a[1]);
	case SNPSIM_OP_PV_KICK:
		return snpsim_pv_kick(a[0], &v[0]);
	}

	/* The rest work on a handle in a[0]. */
	res = snpsim_handle(s, a[0], &p);
	if (res.status)
		return res;
	switch (op) {
	case SNPSIM_OP_VMSA_INIT:
		return snpsim_page_init(p, a[1], a[2], &v[0]);
	case SNPSIM_OP_VMSA_SET:
		return snpsim_page_set(p, a[1], a[2]);
	case SNPSIM_OP_VMSA_POKE:
		return snpsim_page_poke(p, a[1], a[2], a[3]);
	case SNPSIM_OP_RMPADJUST:
		return snpsim_page_rmpadjust(p, a[1], a[2], &v[0]);
	case SNPSIM_OP_PVALIDATE:
		return snpsim_page_pvalidate(p, a[1], a[2], &v[0], &v[1]);
	case SNPSIM_OP_WAIT_MARKER:
		return snpsim_page_wait_marker(p, a[1], &v[0]);
	case SNPSIM_OP_VMSA_FREE:
		res = snpsim_page_free(p, &v[0], &v[1]);
		if (res.status != SNPSIM_ST_BUSY)
			s->h[a[0]] = NULL;
		return res;
	}
	return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
}

/* ---- the ctl file ---- */

static void snpsim_info(u64 *v)
{
	v[0] = SNPSIM_KABI_VERSION;
	v[1] = SNPSIM_MODULE_VERSION_MAJOR << 16 | SNPSIM_MODULE_VERSION_MINOR << 8 |
	       SNPSIM_MODULE_VERSION_PATCH;
	v[2] = snpsim_platform.sev_status;
	v[3] = 0;	/* VMPL: the module only loads at VMPL0 */
	v[4] = snpsim_platform.hv_features;
}

static ssize_t snpsim_ctl_write(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	struct snpsim_session *s = file->private_data;
	struct snpsim_result res = snpsim_ok();
	struct snpsim_kresp resp = {};
	struct snpsim_kreq req;

	if (len != sizeof(req))
		return -EINVAL;
	if (copy_from_user(&req, buf, sizeof(req)))
		return -EFAULT;

	resp.abi = SNPSIM_KABI_VERSION;
	resp.op = req.op;
	if (req.op == SNPSIM_OP_INFO) {
		snpsim_info(resp.val);
	} else if (req.abi != SNPSIM_KABI_VERSION) {
		res = snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ABI);
	} else if (!mutex_trylock(&snpsim_op_lock)) {
		res = snpsim_refuse(SNPSIM_ST_BUSY, SNPSIM_R_NONE);
	} else {
		res = snpsim_dispatch(s, req.op, req.arg, resp.val);
		mutex_unlock(&snpsim_op_lock);
	}
	resp.status = res.status;
	resp.reason = res.reason;
	resp.err = res.err;

	mutex_lock(&s->resp_lock);
	s->resp = resp;
	s->have_resp = true;
	mutex_unlock(&s->resp_lock);
	return len;
}

static ssize_t snpsim_ctl_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	struct snpsim_session *s = file->private_data;
	struct snpsim_kresp resp;

	if (len < sizeof(resp))
		return -EINVAL;
	mutex_lock(&s->resp_lock);
	if (!s->have_resp) {
		mutex_unlock(&s->resp_lock);
		return -ENODATA;
	}
	resp = s->resp;
	s->have_resp = false;
	mutex_unlock(&s->resp_lock);
	if (copy_to_user(buf, &resp, sizeof(resp)))
		return -EFAULT;
	return sizeof(resp);
}

static int snpsim_ctl_open(struct inode *inode, struct file *file)
{
	struct snpsim_session *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return -ENOMEM;
	mutex_init(&s->resp_lock);
	file->private_data = s;
	return stream_open(inode, file);
}

static int snpsim_ctl_release(struct inode *inode, struct file *file)
{
	struct snpsim_session *s = file->private_data;
	unsigned int h;

	mutex_lock(&snpsim_op_lock);
	for (h = 0; h < SNPSIM_HANDLES; h++) {
		if (s->h[h])
			snpsim_page_release(s->h[h]);
	}
	/* A CPU may have come back online since: pages kept earlier may be free now. */
	snpsim_kept_reap(false);
	mutex_unlock(&snpsim_op_lock);
	mutex_destroy(&s->resp_lock);
	kfree(s);
	return 0;
}

static const struct file_operations snpsim_ctl_fops = {
	.owner = THIS_MODULE,
	.open = snpsim_ctl_open,
	.release = snpsim_ctl_release,
	.read = snpsim_ctl_read,
	.write = snpsim_ctl_write,
};

/* ---- load checks ---- */

/*
 * Linux's is_vmpl0(): RMPADJUST can only change a numerically higher VMPL's permissions, so
 * clearing VMPL1's (RDX = 1) succeeds only at VMPL0 ([LX] arch/x86/boot/compressed/sev.c).
 * Returns the RMPADJUST status.
 */
static int snpsim_vmpl0_probe(u32 *eax)
{
	unsigned long page = get_zeroed_page(GFP_KERNEL);

	if (!page)
		return -ENOMEM;
	*eax = snpsim_rmpadjust(page, 0, 1);
	free_page(page);
	return 0;
}

static int __init snpsim_check_platform(void)
{
	u64 msr;
	u32 eax;
	int err;

	if (!cc_platform_has(CC_ATTR_GUEST_SEV_SNP)) {
		pr_err("not loaded: this guest is not SEV-SNP active (cc_platform_has(CC_ATTR_GUEST_SEV_SNP) is false)\n");
		return -ENODEV;
	}
	if (rdmsrl_safe(MSR_AMD64_SEV, &snpsim_platform.sev_status)) {
		pr_err("not loaded: reading SEV_STATUS (MSR 0xc0010131) faulted\n");
		return -ENODEV;
	}
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	/* Since 6.11 Linux can run under an SVSM at a VMPL > 0 and says so in snp_vmpl. */
	if (snp_vmpl) {
		pr_err("not loaded: the kernel runs at VMPL%u under an SVSM, VMPL0 is required\n", snp_vmpl);
		return -ENODEV;
	}
#endif
	err = snpsim_vmpl0_probe(&eax);
	if (err)
		return err;
	if (eax) {
		pr_err("not loaded: not running at VMPL0 (RMPADJUST of VMPL1 permissions returned %u)\n", eax);
		return -ENODEV;
	}

	err = snpsim_msr_protocol(GHCB_MSR_HV_FT_REQ, GHCB_MSR_HV_FT_RESP, &msr);
	if (err) {
		pr_err("not loaded: GHCB MSR protocol HV features request failed (%d, GHCB MSR %#llx)\n",
		       err, msr);
		return -ENODEV;
	}
	snpsim_platform.hv_features = GHCB_MSR_HV_FT_RESP_VAL(msr);
	if (!(snpsim_platform.hv_features & GHCB_HV_FT_SNP_AP_CREATION)) {
		pr_err("not loaded: the hypervisor does not offer SNP AP Creation (HV features %#llx, bit 1 clear)\n",
		       snpsim_platform.hv_features);
		return -ENODEV;
	}

	err = snpsim_msr_protocol(GHCB_MSR_SEV_INFO_REQ, GHCB_MSR_SEV_INFO_RESP, &msr);
	if (err) {
		pr_err("not loaded: GHCB MSR protocol SEV information request failed (%d, GHCB MSR %#llx)\n",
		       err, msr);
		return -ENODEV;
	}
	snpsim_platform.ghcb_version = min_t(u64, GHCB_MSR_PROTO_MAX(msr), SNPSIM_GHCB_VERSION_MAX);
	return 0;
}

static int __init snpsim_init(void)
{
	int err;

	err = snpsim_check_platform();
	if (err)
		return err;
	err = snpsim_cpu_init();
	if (err) {
		pr_err("not loaded: CPU hotplug state setup failed (%d)\n", err);
		return err;
	}
	snpsim_dir = debugfs_create_dir("snpsim", NULL);
	if (IS_ERR(snpsim_dir)) {
		pr_err("not loaded: debugfs is not available (%ld)\n", PTR_ERR(snpsim_dir));
		snpsim_cpu_exit();
		return PTR_ERR(snpsim_dir);
	}
	debugfs_create_file("ctl", 0600, snpsim_dir, NULL, &snpsim_ctl_fops);
	pr_info("loaded: version %s, kABI %d, SEV_STATUS %#llx, HV features %#llx, GHCB protocol %u\n",
		SNPSIM_MODULE_VERSION_STR, SNPSIM_KABI_VERSION, snpsim_platform.sev_status,
		snpsim_platform.hv_features, snpsim_platform.ghcb_version);
	return 0;
}

static void __exit snpsim_exit(void)
{
	debugfs_remove(snpsim_dir);
	mutex_lock(&snpsim_op_lock);
	snpsim_kept_reap(true);
	mutex_unlock(&snpsim_op_lock);
	snpsim_cpu_exit();
}

module_init(snpsim_init);
module_exit(snpsim_exit);

MODULE_LICENSE("GPL");
MODULE_VERSION(SNPSIM_MODULE_VERSION_STR);
MODULE_DESCRIPTION("snpsim: raw SEV-SNP AP Creation, RMPADJUST and PVALIDATE for a differential test harness");
MODULE_AUTHOR("snpsim");
