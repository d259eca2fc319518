# %post of wazuh-misp (rpm/post.sh, read by rpm/wazuh-misp.spec), on install ($1 = 1) and on
# upgrade or reinstall ($1 >= 2) alike: (re)install the integration into the Wazuh manager.
# `wazuh-misp install` copies the binary to /var/ossec/integrations/custom-misp (root:wazuh
# 0750) and creates its state directory; once `wazuh-misp setup` has written
# /var/ossec/etc/custom-misp.json it also refreshes the ossec.conf block and the rules, keeping
# the settings. Without settings it prints one line telling the admin to run
# `sudo wazuh-misp setup`. --restart restarts the manager the safe way only if it runs and
# something changed; systemctl is used only where systemd runs.
#
# A failure never fails the transaction: the installer has already rolled back every file it
# touched, and a failing %post only leaves rpm/dnf reporting an error (on upgrade, with both
# versions recorded in the database) for what is a configuration problem the admin fixes with
# `sudo wazuh-misp install --restart`.
WAZUH_HOME=/var/ossec
if ! /usr/bin/wazuh-misp --wazuh-home "$WAZUH_HOME" install --restart </dev/null; then
    echo "wazuh-misp: WARNING: the integration could not be installed into the Wazuh manager in $WAZUH_HOME (see above); nothing there was changed." >&2
    echo "wazuh-misp: the package is installed; fix the problem, then run: sudo wazuh-misp install --restart" >&2
fi
exit 0
