//! Port specifications for scan_host: `top100` (default), `top1000`, `all`, or lists and
//! ranges like `22,80,8000-8100`. The top-ports order is our own table (remote admin, web,
//! mail, directory, databases and the Wazuh ports first), not nmap's data files.

/// Our own ordering of the ports most worth checking on servers, most important first.
const TOP_100: [u16; 100] = [
    22, 80, 443, 3389, 21, 23, 25, 53, 110, 143, 445, 139, 135, 3306, 5432, 1433, 1521, 6379,
    27017, 9200, 9300, 5601, 8080, 8443, 8000, 8888, 5900, 5985, 5986, 111, 2049, 389, 636, 88,
    464, 587, 465, 993, 995, 1514, 1515, 1516, 55000, 514, 161, 162, 123, 69, 873, 2375, 2376,
    2379, 2380, 6443, 10250, 10255, 4789, 8472, 9090, 9091, 9093, 9100, 3000, 5000, 5001, 8081,
    8082, 8001, 8008, 8181, 8500, 8200, 4369, 5672, 15672, 61616, 11211, 9042, 7000, 7001, 5984,
    50000, 1883, 8883, 5353, 1900, 3268, 3269, 179, 1723, 500, 4500, 1194, 51820, 6000, 631, 515,
    548, 2222, 2181,
];

/// Extra ports for `top1000` after the top 100: the rest of the well-known range, then
/// common service ports above 1024 (deduplicated when the list is built).
const TOP_1000_HIGH: &[u16] = &[
    1080, 1099, 1158, 1241, 1311, 1434, 1583, 1720, 1741, 1812, 1813, 1863, 2000, 2001, 2082, 2083,
    2086, 2087, 2095, 2096, 2100, 2121, 2301, 2381, 2483, 2484, 2638, 3050, 3128, 3260, 3299, 3306,
    3333, 3351, 3478, 3632, 3689, 3690, 3780, 4000, 4040, 4242, 4333, 4443, 4444, 4567, 4711, 4712,
    4848, 4993, 5002, 5003, 5004, 5050, 5060, 5061, 5190, 5222, 5269, 5357, 5400, 5500, 5555, 5631,
    5632, 5666, 5800, 5901, 5902, 5903, 6001, 6002, 6346, 6379, 6514, 6566, 6666, 6667, 7070, 7071,
    7077, 7474, 7547, 7676, 7777, 7778, 8009, 8010, 8020, 8031, 8042, 8060, 8083, 8086, 8087, 8088,
    8089, 8090, 8091, 8118, 8123, 8139, 8140, 8161, 8222, 8243, 8280, 8281, 8300, 8333, 8400, 8403,
    8444, 8530, 8531, 8649, 8761, 8834, 8880, 8881, 8983, 9000, 9001, 9002, 9003, 9009, 9043, 9060,
    9080, 9081, 9092, 9099, 9160, 9191, 9201, 9295, 9418, 9443, 9444, 9600, 9800, 9876, 9943, 9981,
    9999, 10000, 10001, 10443, 11111, 12000, 12345, 13720, 15000, 16010, 16992, 16993, 18080,
    18091, 18092, 19999, 20000, 20547, 25565, 27018, 27019, 28017, 30000, 31337, 32400, 32768,
    33060, 37777, 44818, 47808, 49152, 49153, 49154, 49155, 49156, 49157, 50070, 50075, 54321,
    60000, 61613, 62078,
];

/// Most comma-separated items in one spec.
pub const MAX_ITEMS: usize = 1000;

/// The ports to scan, in scan order, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList(pub Vec<u16>);

/// Every port, the top 1000 first: open ports and round-trip times show up early, which
/// sharpens the adaptive timeout for the long tail.
fn all_ports() -> Vec<u16> {
    let mut out = top_1000();
    let mut seen = vec![false; 65536];
    for &p in &out {
        seen[p as usize] = true;
    }
    out.extend((1..=65535u16).filter(|p| !seen[*p as usize]));
    out
}

/// What every port error offers instead.
pub const ALLOWED: &str = "allowed: `top100`, `top1000`, `all`, a port number, or ports and \
                           ranges 1-65535 like `22,80,8000-8100` (a string, or a list of \
                           numbers and strings)";

/// The `ports` argument as a client may send it: a spec string (`"22,80"`, `"top1000"`),
/// one port number (`22`), or a list of numbers and strings (`[22, 80, "8000-8100"]`, as the
/// MCP Inspector's `--tool-arg` and models send them). Held as the equivalent spec string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec(pub String);

impl PortSpec {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for PortSpec {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl From<String> for PortSpec {
    fn from(s: String) -> Self {
        Self(s)
    }
}

fn number_item(n: &serde_json::Number) -> Result<String, String> {
    match n.as_u64() {
        Some(p) if (1..=65535).contains(&p) => Ok(p.to_string()),
        _ => Err(format!("port {n} is out of range 1-65535; {ALLOWED}")),
    }
}

impl<'de> serde::Deserialize<'de> for PortSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::Value;
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => number_item(&n).map(Self).map_err(D::Error::custom),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(D::Error::custom(format!("empty list; {ALLOWED}")));
                }
                if items.len() > MAX_ITEMS {
                    return Err(D::Error::custom(format!(
                        "more than {MAX_ITEMS} items; use ranges like \"1000-2000\""
                    )));
                }
                let mut parts = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    parts.push(
                        match item {
                            Value::Number(n) => number_item(n),
                            Value::String(s) if s.contains(',') => Err(format!(
                                "item {i} holds a comma; give one port or range per list item"
                            )),
                            Value::String(s) => Ok(s.clone()),
                            _ => Err(format!(
                                "item {i} is neither a port number nor a string; {ALLOWED}"
                            )),
                        }
                        .map_err(D::Error::custom)?,
                    );
                }
                Ok(Self(parts.join(",")))
            }
            _ => Err(D::Error::custom(format!(
                "expected a string, a number or a list; {ALLOWED}"
            ))),
        }
    }
}

impl schemars::JsonSchema for PortSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortSpec".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                { "type": "string", "minLength": 1 },
                { "type": "integer", "minimum": 1, "maximum": 65535 },
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_ITEMS,
                    "items": {
                        "anyOf": [
                            { "type": "integer", "minimum": 1, "maximum": 65535 },
                            { "type": "string", "minLength": 1 }
                        ]
                    }
                }
            ]
        })
    }
}

/// Parse a port spec. The error says which item is wrong and what is allowed.
pub fn parse(spec: &str) -> Result<PortList, String> {
    let s = spec;
    if s.trim().is_empty() {
        return Err(format!("empty; {ALLOWED}"));
    }
    if s != s.trim() {
        return Err(format!(
            "surrounding spaces in `{}`: values are exact; {ALLOWED}",
            crate::util::sanitize_untrusted(s.as_bytes(), 40)
        ));
    }
    match s {
        "top100" => return Ok(PortList(TOP_100.to_vec())),
        "top1000" => return Ok(PortList(top_1000())),
        "all" => return Ok(PortList(all_ports())),
        _ => {}
    }
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "more than {MAX_ITEMS} items; use ranges like 1000-2000"
        ));
    }
    let mut seen = vec![false; 65536];
    let mut out = Vec::new();
    for item in items {
        if item.is_empty() {
            return Err("empty item (two commas in a row, or a trailing comma)".to_string());
        }
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (port(a, item)?, port(b, item)?),
            None => {
                let p = port(item, item)?;
                (p, p)
            }
        };
        if lo > hi {
            return Err(format!("range `{item}` runs backwards; write {hi}-{lo}"));
        }
        for p in lo..=hi {
            if !seen[p as usize] {
                seen[p as usize] = true;
                out.push(p);
            }
        }
    }
    Ok(PortList(out))
}

fn port(text: &str, item: &str) -> Result<u16, String> {
    let shown = crate::util::sanitize_untrusted(item.as_bytes(), 40);
    let n: u32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{shown}` is not a port, a range or a preset; {ALLOWED}"))?;
    if n == 0 || n > 65535 {
        return Err(format!("port {n} in `{shown}` is out of range 1-65535"));
    }
    Ok(n as u16)
}

fn top_1000() -> Vec<u16> {
    let mut seen = vec![false; 65536];
    let mut out = Vec::with_capacity(1000);
    let mut push = |p: u16, out: &mut Vec<u16>| {
        if out.len() < 1000 && !seen[p as usize] {
            seen[p as usize] = true;
            out.push(p);
        }
    };
    for p in TOP_100 {
        push(p, &mut out);
    }
    for &p in TOP_1000_HIGH {
        push(p, &mut out);
    }
    // Then the rest of the privileged range, which holds most classic services.
    for p in 1..=1024u16 {
        push(p, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Result<String, String> {
        serde_json::from_value::<PortSpec>(v)
            .map(|p| p.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn port_spec_takes_numbers_lists_and_strings() {
        use serde_json::json;
        assert_eq!(spec(json!(22)).unwrap(), "22");
        assert_eq!(spec(json!([22, 80])).unwrap(), "22,80");
        assert_eq!(spec(json!([22, "8000-8100"])).unwrap(), "22,8000-8100");
        assert_eq!(spec(json!("top1000")).unwrap(), "top1000");
        for bad in [
            json!(0),
            json!(70000),
            json!(-1),
            json!(2.5),
            json!([]),
            json!([[22]]),
        ] {
            let e = spec(bad.clone()).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
        assert!(spec(json!(true)).unwrap_err().contains("allowed"));
        assert!(spec(json!(["22,80"])).unwrap_err().contains("comma"));
    }

    #[test]
    fn errors_list_what_is_allowed_once() {
        for bad in ["abc", "22,abc", "", " "] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.matches("allowed").count(), 1, "{bad}: {e}");
        }
        assert!(parse("").unwrap_err().starts_with("empty"));
    }

    #[test]
    fn presets_have_the_promised_sizes_and_no_duplicates() {
        for (spec, n) in [("top100", 100), ("top1000", 1000), ("all", 65535)] {
            let p = parse(spec).unwrap().0;
            assert_eq!(p.len(), n, "{spec}");
            let mut sorted = p.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), n, "{spec} has duplicates");
        }
        let top = parse("top1000").unwrap().0;
        assert_eq!(&top[..100], &TOP_100[..], "top1000 starts with top100");
        assert!(top.contains(&55000) && top.contains(&1514) && top.contains(&9200));
    }

    #[test]
    fn lists_and_ranges_keep_order_and_merge_duplicates() {
        assert_eq!(
            parse("22,80,8000-8003,80").unwrap().0,
            vec![22, 80, 8000, 8001, 8002, 8003]
        );
        assert_eq!(parse("443, 80").unwrap().0, vec![443, 80]);
        assert!(parse(" 443 ").unwrap_err().contains("surrounding spaces"));
        assert!(parse("TOP100").is_err());
        assert_eq!(parse("65535").unwrap().0, vec![65535]);
    }

    #[test]
    fn malformed_specs_say_what_is_wrong() {
        for (spec, needle) in [
            ("0", "out of range"),
            ("70000", "out of range"),
            ("80-22", "backwards"),
            ("22,,80", "empty item"),
            ("22,", "empty item"),
            ("ssh", "not a port"),
            ("1-2-3", "not a port"),
            ("-5", "not a port"),
        ] {
            let e = parse(spec).unwrap_err();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        let many = (1..=1001)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse(&many).unwrap_err().contains("more than 1000"));
    }
}
