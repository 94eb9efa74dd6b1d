# --- testdata only (registrar_test.go): begin ---
# examples/registrar.py plus NAT handling of REGISTER, for the TCP
# connection-reuse test: a UA whose Via port differs from its source port
# (nat_uac_test 16; 2 for the address) gets its source address saved as
# the contact's received address (fix_nated_register + registrar's
# received_avp), so lookup() sets $du to it and t_relay sends the INVITE
# back over the connection the UA registered on. Apart from the blocks
# marked "testdata only", this file must equal examples/registrar.py
# (TestRegistrarNATScriptInSync checks it).
# --- testdata only: end ---
# A registrar and stateful proxy without authentication, in Kamailio's
# app_python3 style: REGISTER is saved in the location table, calls to a
# registered user are looked up and relayed with Record-Route, in-dialog
# requests follow the route set (loose routing). It is the reference
# script with auth, NAT and accounting left out, for trying kemigo's
# transaction layer and registrar:
#
#     ./kemigo run -c examples/registrar.toml
import KSR


def mod_init():
    return Registrar()


class Registrar:
    def child_init(self, rank):
        return 0

    def ksr_request_route(self, msg):
        if KSR.maxfwd.process_maxfwd(10) < 0:
            KSR.sl.sl_send_reply(483, "Too Many Hops")
            return 1
        if KSR.sanity.sanity_check(17895, 7) < 0:
            return 1
        if KSR.is_CANCEL():
            if KSR.tm.t_check_trans() > 0:
                KSR.tm.t_relay()
            return 1
        if KSR.siputils.has_totag() > 0:
            self.within_dialog()
            return 1
        if KSR.tm.t_check_trans() == 0:
            return 1
        KSR.hdr.remove("Route")
        if KSR.is_method_in("IS"):
            KSR.rr.record_route()
        if KSR.is_REGISTER():
            # --- testdata only: begin ---
            if KSR.nathelper.nat_uac_test(18) > 0:
                KSR.nathelper.fix_nated_register()
            # --- testdata only: end ---
            if KSR.registrar.save("location", 0) < 0:
                KSR.sl.sl_reply_error()
            return 1
        if KSR.corex.has_ruri_user() < 0:
            KSR.sl.sl_send_reply(484, "Address Incomplete")
            return 1
        rc = KSR.registrar.lookup("location")
        if rc < 0:
            KSR.tm.t_newtran()
            if rc == -2:
                KSR.sl.send_reply(405, "Method Not Allowed")
            else:
                KSR.sl.send_reply(404, "Not Found")
            return 1
        self.relay()
        return 1

    def within_dialog(self):
        if KSR.rr.loose_route() > 0:
            self.relay()
            return
        if KSR.is_ACK():
            if KSR.tm.t_check_trans() > 0:
                self.relay()
            return
        KSR.sl.sl_send_reply(404, "Not here")

    def relay(self):
        if KSR.is_INVITE():
            KSR.tm.t_on_failure("failure")
        if KSR.tm.t_relay() < 0:
            KSR.sl.sl_reply_error()

    def failure(self, msg):
        if KSR.tm.t_is_canceled() > 0:
            return 1
        KSR.info("call to " + KSR.pv.getw("$ru") + " failed with "
                 + str(KSR.pv.get("$T_reply_code")) + "\n")
        return 1
