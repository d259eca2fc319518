# %postun of wazuh-misp (rpm/postun.sh, read by rpm/wazuh-misp.spec). $1: 0 on erase, 1 on
# upgrade (when it runs after the new package's %post: nothing to do). rpm has no purge, and
# like a %config file the settings survive an erase so that a reinstall finds them; say where
# they are, since they hold the MISP API key.
WAZUH_HOME=/var/ossec
if [ "$1" -eq 0 ] && [ -e "$WAZUH_HOME/etc/custom-misp.json" ]; then
    echo "wazuh-misp: kept $WAZUH_HOME/etc/custom-misp.json (it holds the MISP API key) and $WAZUH_HOME/var/custom-misp/; delete them if wazuh-misp is not coming back." >&2
fi
exit 0
