# %preun of wazuh-misp (rpm/preun.sh, read by rpm/wazuh-misp.spec). $1 is the number of
# instances left after the transaction: 0 on erase, 1 on upgrade. On upgrade rpm runs this (the
# OLD package's %preun) AFTER the new package's %post has refreshed the integration, so it must
# do nothing then. On erase, undo what `wazuh-misp install` did while the binary is still here:
# the ossec.conf block (the file is restored byte for byte), the rules file and the integration
# copy, and restart the manager the safe way if it runs. The settings and the state directory
# are kept (rpm has no purge; see %postun).
#
# A failure never fails the erase: the uninstaller rolls back on its own, and a failing %preun
# would make the package impossible to remove.
WAZUH_HOME=/var/ossec
if [ "$1" -eq 0 ] && [ -x /usr/bin/wazuh-misp ] && [ -d "$WAZUH_HOME" ]; then
    if ! /usr/bin/wazuh-misp --wazuh-home "$WAZUH_HOME" uninstall --restart </dev/null; then
        echo "wazuh-misp: WARNING: the integration could not be removed from the Wazuh manager in $WAZUH_HOME (see above); remove its <integration> block from ossec.conf and $WAZUH_HOME/integrations/custom-misp and $WAZUH_HOME/etc/rules/custom-misp_rules.xml by hand, then restart the manager." >&2
    fi
fi
exit 0
