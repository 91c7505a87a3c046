//! The alert generator's catalogue: the Wazuh rules its scenarios fire (ids, levels,
//! groups, MITRE and PCI DSS mappings as Wazuh's ruleset has them), the everyday noise per
//! platform, and the users and file paths the scenarios pick from.

pub(super) struct Rule {
    pub(super) id: &'static str,
    pub(super) level: u64,
    pub(super) description: &'static str,
    pub(super) groups: &'static [&'static str],
    pub(super) mitre: Option<(
        &'static [&'static str],
        &'static [&'static str],
        &'static [&'static str],
    )>,
    pub(super) pci_dss: &'static [&'static str],
}

pub(super) const R5710: Rule = Rule {
    id: "5710",
    level: 5,
    description: "sshd: Attempt to login using a non-existent user",
    groups: &["syslog", "sshd", "invalid_login", "authentication_failed"],
    mitre: Some((
        &["T1110.001", "T1021.004"],
        &["Credential Access", "Lateral Movement"],
        &["Password Guessing", "SSH"],
    )),
    pci_dss: &["10.2.4", "10.2.5", "10.6.1"],
};
pub(super) const R5716: Rule = Rule {
    id: "5716",
    level: 5,
    description: "sshd: authentication failed.",
    groups: &["syslog", "sshd", "authentication_failed"],
    mitre: Some((
        &["T1110.001"],
        &["Credential Access"],
        &["Password Guessing"],
    )),
    pci_dss: &["10.2.4", "10.2.5"],
};
pub(super) const BRUTE: &[&str] = &["T1110"];
pub(super) const CRED: &[&str] = &["Credential Access"];
pub(super) const BRUTE_NAME: &[&str] = &["Brute Force"];
pub(super) const R5712: Rule = Rule {
    id: "5712",
    level: 10,
    description: "sshd: brute force trying to get access to the system. Non existent user.",
    groups: &["syslog", "sshd", "authentication_failures"],
    mitre: Some((BRUTE, CRED, BRUTE_NAME)),
    pci_dss: &["11.4", "10.2.4", "10.2.5"],
};
pub(super) const R5720: Rule = Rule {
    id: "5720",
    level: 10,
    description: "sshd: Multiple authentication failures.",
    groups: &["syslog", "sshd", "authentication_failures"],
    mitre: Some((BRUTE, CRED, BRUTE_NAME)),
    pci_dss: &["10.2.4", "10.2.5", "11.4"],
};
pub(super) const R5763: Rule = Rule {
    id: "5763",
    level: 10,
    description: "sshd: brute force trying to get access to the system. Authentication failed.",
    groups: &["syslog", "sshd", "authentication_failures"],
    mitre: Some((BRUTE, CRED, BRUTE_NAME)),
    pci_dss: &["11.4", "10.2.4", "10.2.5"],
};
pub(super) const R31166: Rule = Rule {
    id: "31166",
    level: 6,
    description: "Shellshock attack attempt",
    groups: &["web", "accesslog", "attack"],
    mitre: Some((
        &["T1190"],
        &["Initial Access"],
        &["Exploit Public-Facing Application"],
    )),
    pci_dss: &["6.5", "11.4"],
};
pub(super) const R31168: Rule = Rule {
    id: "31168",
    level: 15,
    description: "Shellshock attack detected",
    groups: &["web", "accesslog", "attack"],
    mitre: Some((
        &["T1068", "T1190"],
        &["Privilege Escalation", "Initial Access"],
        &[
            "Exploitation for Privilege Escalation",
            "Exploit Public-Facing Application",
        ],
    )),
    pci_dss: &["6.5", "11.4"],
};
pub(super) const R550: Rule = Rule {
    id: "550",
    level: 7,
    description: "Integrity checksum changed.",
    groups: &[
        "ossec",
        "syscheck",
        "syscheck_entry_modified",
        "syscheck_file",
    ],
    mitre: Some((&["T1565.001"], &["Impact"], &["Stored Data Manipulation"])),
    pci_dss: &["11.5"],
};
pub(super) const VALID: &[&str] = &["T1078"];
pub(super) const VALID_TACTICS: &[&str] = &[
    "Defense Evasion",
    "Persistence",
    "Privilege Escalation",
    "Initial Access",
];
pub(super) const VALID_NAME: &[&str] = &["Valid Accounts"];
pub(super) const NOISE_LINUX: &[Rule] = &[
    Rule {
        id: "5501",
        level: 3,
        description: "PAM: Login session opened.",
        groups: &["pam", "syslog", "authentication_success"],
        mitre: Some((VALID, VALID_TACTICS, VALID_NAME)),
        pci_dss: &["10.2.5"],
    },
    Rule {
        id: "5502",
        level: 3,
        description: "PAM: Login session closed.",
        groups: &["pam", "syslog"],
        mitre: None,
        pci_dss: &["10.2.5"],
    },
    Rule {
        id: "5715",
        level: 3,
        description: "sshd: authentication success.",
        groups: &["syslog", "sshd", "authentication_success"],
        mitre: Some((
            &["T1078", "T1021"],
            &["Defense Evasion", "Persistence", "Lateral Movement"],
            &["Valid Accounts", "Remote Services"],
        )),
        pci_dss: &["10.2.5"],
    },
    Rule {
        id: "5402",
        level: 3,
        description: "Successful sudo to ROOT executed.",
        groups: &["syslog", "sudo"],
        mitre: Some((
            &["T1548.003"],
            &["Privilege Escalation", "Defense Evasion"],
            &["Sudo and Sudo Caching"],
        )),
        pci_dss: &["10.2.5", "10.2.2"],
    },
    Rule {
        id: "1002",
        level: 2,
        description: "Unknown problem somewhere in the system.",
        groups: &["syslog", "errors"],
        mitre: None,
        pci_dss: &[],
    },
    Rule {
        id: "5403",
        level: 4,
        description: "First time user executed sudo.",
        groups: &["syslog", "sudo"],
        mitre: None,
        pci_dss: &[],
    },
    Rule {
        id: "40704",
        level: 4,
        description: "Systemd: Service exited due to a failure.",
        groups: &["local", "systemd"],
        mitre: None,
        pci_dss: &[],
    },
];
pub(super) const NOISE_WINDOWS: &[Rule] = &[
    Rule {
        id: "60106",
        level: 3,
        description: "Windows logon success.",
        groups: &["windows", "windows_security", "authentication_success"],
        mitre: Some((VALID, VALID_TACTICS, VALID_NAME)),
        pci_dss: &["10.2.5"],
    },
    Rule {
        id: "60137",
        level: 3,
        description: "Windows User Logoff.",
        groups: &["windows", "windows_security"],
        mitre: None,
        pci_dss: &["10.2.5"],
    },
];

pub(super) const USERS_VALID: &[&str] = &["root", "ubuntu", "deploy", "backup"];
pub(super) const USERS_INVALID: &[&str] = &[
    "admin", "test", "oracle", "postgres", "git", "user", "support",
];
pub(super) const STAFF: &[&str] = &["alice", "bob", "carol", "deploy", "svc-backup"];
pub(super) const FIM_LINUX: &[&str] = &[
    "/etc/passwd",
    "/etc/hosts",
    "/etc/ssh/sshd_config",
    "/etc/sudoers",
    "/etc/crontab",
    "/usr/bin/curl",
    "/var/www/html/index.php",
];
pub(super) const FIM_WINDOWS: &[&str] = &[
    "c:\\windows\\system32\\drivers\\etc\\hosts",
    "c:\\program files\\acme\\agent.ini",
];
