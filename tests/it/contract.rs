//! `schema.graphql` is the contract front-end apps build on.

const COMMITTED: &str = include_str!("../../schema.graphql");

#[test]
fn schema_graphql_matches_exported_sdl() {
    let exported = dirgate::graphql::sdl();
    assert!(
        exported == COMMITTED,
        "schema.graphql differs from the schema the code exports.\n\
         If the change is intended, regenerate it with:\n    cargo run -- schema > schema.graphql\n\
         and review the diff: front-end apps build on this file."
    );
}

/// Whether `sdl` still has `needle`. A field with arguments may have gained optional ones
/// after the spec's (an additive change): its line starts with the spec's arguments and ends
/// with the spec's type.
fn keeps(sdl: &str, needle: &str) -> bool {
    let sdl = &compact(sdl);
    if sdl.contains(needle) {
        return true;
    }
    let Some((args, ty)) = needle.rsplit_once("): ") else {
        return false;
    };
    sdl.lines().map(str::trim).any(|line| {
        line.starts_with(args)
            && line.ends_with(&format!("): {ty}"))
            && line[args.len()..].starts_with(", ")
    })
}

/// The SDL without its descriptions, each field's arguments on its line
/// (`node(id: ID!): Node`), as the needles are written.
fn compact(sdl: &str) -> String {
    let mut bare = String::new();
    let mut rest = sdl;
    while let Some(at) = rest.find("\"\"\"") {
        bare.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        rest = after.find("\"\"\"").map_or("", |end| &after[end + 3..]);
    }
    bare.push_str(rest);
    let mut out = String::new();
    let mut depth = 0usize;
    for line in bare.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let line = if depth > 0 {
            line.trim_end_matches(',')
        } else {
            line
        };
        if depth > 0 && !line.starts_with(')') && !out.ends_with('(') {
            out.push_str(", ");
        }
        out.push_str(line);
        depth = (depth + line.matches('(').count()).saturating_sub(line.matches(')').count());
        if depth == 0 {
            out.push('\n');
        }
    }
    out
}

#[test]
fn compact_puts_described_arguments_on_one_line() {
    let sdl = "type Query {\n\t\"\"\"\n\tAny object.\n\t\"\"\"\n\tnode(\n\t\t\"\"\"\n\t\tIts id.\n\t\t\"\"\"\n\t\tid: ID!,\n\t\tx: Int\n\t): Node\n}";
    assert!(
        compact(sdl).contains("node(id: ID!, x: Int): Node"),
        "{}",
        compact(sdl)
    );
}

#[test]
fn an_added_optional_argument_keeps_a_field() {
    let sdl =
        "type Query {\n  users(first: Int, after: String, orderBy: UserOrder): UserConnection!\n}";
    assert!(keeps(
        sdl,
        "users(first: Int, after: String): UserConnection!"
    ));
    assert!(!keeps(
        sdl,
        "users(first: Int, after: String): GroupConnection!"
    ));
    assert!(!keeps(
        sdl,
        "users(first: Int, last: String): UserConnection!"
    ));
    assert!(!keeps(
        sdl,
        "users(first: Int, after: String, filter: UserFilter): UserConnection!"
    ));
}

/// The names the contract (docs/rules.md) gives must stay: extending is fine, renaming is not.
#[test]
fn schema_keeps_the_names_of_the_spec() {
    let sdl = dirgate::graphql::sdl();
    for needle in [
        "interface Node",
        "enum DirectoryKind",
        "enum IntegrationStatus",
        "enum SyncTrigger",
        "enum SyncRunStatus",
        "enum UserStatus",
        "enum AssignmentSource",
        "enum DevicePlatform",
        "node(id: ID!): Node",
        "integrations(first: Int, after: String, filter: IntegrationFilter, orderBy: IntegrationOrder): IntegrationConnection!",
        "integration(id: ID!): Integration",
        "users(first: Int, after: String, filter: UserFilter): UserConnection!",
        "user(id: ID!): User",
        "groups(first: Int, after: String, filter: GroupFilter): GroupConnection!",
        "group(id: ID!): Group",
        "devices(first: Int, after: String, filter: DeviceFilter): DeviceConnection!",
        "device(id: ID!): Device",
        "syncRun(id: ID!): SyncRun",
        "registerDevice(input: RegisterDeviceInput!): RegisterDevicePayload",
        "assignDeviceUser(input: AssignDeviceUserInput!): AssignDeviceUserPayload",
        "unassignDeviceUser(input: UnassignDeviceUserInput!): UnassignDeviceUserPayload",
        "userErrors: [UserError!]!",
        "syncRunUpdated(integrationId: ID): SyncRun!",
        "type Integration implements Node",
        "type User implements Node",
        "type Group implements Node",
        "type Device implements Node",
        "type SyncRun implements Node",
        "totalCount: Int!",
        "origin: String!",
        "assignment: DeviceAssignment",
    ] {
        assert!(keeps(&sdl, needle), "the schema lost `{needle}`");
    }
    for value in [
        "ENTRA_ID",
        "GOOGLE_WORKSPACE",
        "SCIM",
        "AWAITING_CONSENT",
        "AWAITING_ADMIN_APPROVAL",
        "NEEDS_REAUTH",
        "INITIAL",
        "SCHEDULED",
        "MANUAL",
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "HELD",
        "CANCELLED",
        "SUSPENDED",
        "ARCHIVED",
        "AUTOMATIC",
        "MACOS",
        "IOS",
        "IPADOS",
        "TVOS",
        "VISIONOS",
        "WINDOWS",
        "ANDROID",
    ] {
        assert!(
            sdl.contains(&format!("\t{value}\n")),
            "the schema lost enum value {value}"
        );
    }
}

/// R10: device users come only from a directory integration; no mutation creates one.
#[test]
fn schema_has_no_mutation_that_creates_users() {
    let sdl = dirgate::graphql::sdl();
    let mutation = sdl
        .split("type Mutation {")
        .nth(1)
        .and_then(|rest| rest.split("\n}").next())
        .expect("a Mutation type");
    for line in mutation
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('"') && l.contains('('))
    {
        let name = line.split('(').next().unwrap_or_default().to_lowercase();
        assert!(
            !(name.contains("user")
                && (name.starts_with("create")
                    || name.starts_with("add")
                    || name.starts_with("import"))),
            "a mutation creates users: {line}"
        );
        assert!(
            !line.contains("): User!"),
            "a mutation returns a new User: {line}"
        );
    }
    assert!(
        mutation.contains("registerDevice("),
        "the parse found the mutations"
    );
}

/// Every type, interface, enum and input of the schema says what it is: GraphiQL's docs pane
/// is where front-end developers read it. (Relay's `…Connection` and `…Edge` types are
/// async-graphql's own, the same for every list, and carry no description.)
#[test]
fn schema_describes_every_type() {
    let sdl = dirgate::graphql::sdl();
    let lines: Vec<&str> = sdl.lines().collect();
    let undescribed: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| {
            ["type ", "interface ", "enum ", "input ", "union "]
                .iter()
                .any(|k| line.starts_with(k))
        })
        .filter(|(i, _)| *i == 0 || !lines[i - 1].trim_end().ends_with('"'))
        .map(|(_, line)| *line)
        .filter(|line| {
            // The root types are named for what they are.
            !["type Query", "type Mutation", "type Subscription"]
                .iter()
                .any(|root| line.starts_with(root))
        })
        .filter(|line| {
            let name = line.split_whitespace().nth(1).unwrap_or_default();
            !(name.ends_with("Connection") || name.ends_with("Edge"))
        })
        .collect();
    assert!(
        undescribed.is_empty(),
        "types without a description: {undescribed:#?}"
    );
}

/// The type of an introspected field or argument, without its NON_NULL and LIST wrappers,
/// and whether the outermost is NON_NULL.
fn named(ty: &serde_json::Value) -> (String, bool) {
    let non_null = ty["kind"] == "NON_NULL";
    let mut t = ty;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["name"].as_str().unwrap_or_default().to_owned(), non_null)
}

/// Every mutation takes one `input` (a non-null input object) and answers a nullable payload
/// with `userErrors: [UserError!]!`, so a refused input shows as a field-level error and
/// never nulls the whole response.
#[tokio::test]
async fn every_mutation_takes_one_input_and_answers_a_payload_with_user_errors() {
    let schema = dirgate::graphql::introspection().await;
    let types = schema["__schema"]["types"].as_array().expect("types");
    let by_name = |name: &str| {
        types
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no type {name}"))
    };
    let mutations = by_name("Mutation")["fields"].as_array().expect("mutations");
    assert!(mutations.len() >= 16, "the walk found the mutations");
    let mut wrong = Vec::new();
    for m in mutations {
        let name = m["name"].as_str().unwrap_or_default();
        let args = m["args"].as_array().expect("args");
        let one_input = args.len() == 1
            && args[0]["name"] == "input"
            && args[0]["type"]["kind"] == "NON_NULL"
            && by_name(&named(&args[0]["type"]).0)["kind"] == "INPUT_OBJECT";
        if !one_input {
            wrong.push(format!("{name}: takes {args:?}, not one `input: XInput!`"));
        }
        let (payload, non_null) = named(&m["type"]);
        if non_null {
            wrong.push(format!("{name}: its payload is non-null"));
        }
        let fields = by_name(&payload)["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let user_errors = fields.iter().find(|f| f["name"] == "userErrors");
        let typed = user_errors.is_some_and(|f| {
            let t = &f["type"];
            t["kind"] == "NON_NULL"
                && t["ofType"]["kind"] == "LIST"
                && t["ofType"]["ofType"]["kind"] == "NON_NULL"
                && t["ofType"]["ofType"]["ofType"]["name"] == "UserError"
        });
        if !typed {
            wrong.push(format!(
                "{name}: {payload} has no `userErrors: [UserError!]!`"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The walk above fails on a mutation of the old shape: a check that cannot fail is no check.
#[test]
fn the_payload_walk_sees_a_positional_mutation() {
    let positional = serde_json::json!({ "kind": "NON_NULL", "name": null,
        "ofType": { "kind": "OBJECT", "name": "Device", "ofType": null } });
    assert_eq!(named(&positional), ("Device".to_owned(), true));
}

/// Every type, field, argument, input field and enum value of the schema says what it is
/// (GraphiQL's docs pane and generated clients show it), and none cites an internal rule id.
#[tokio::test]
async fn every_type_field_argument_and_enum_value_is_described() {
    let schema = dirgate::graphql::introspection().await;
    let types = schema["__schema"]["types"].as_array().expect("types");
    let described = |v: &serde_json::Value| {
        v["description"]
            .as_str()
            .is_some_and(|d| !d.trim().is_empty())
    };
    let rule_id = regex_lite_rule_id;
    let mut missing = Vec::new();
    let mut cites = Vec::new();
    let mut check = |path: String, v: &serde_json::Value| {
        if !described(v) {
            missing.push(path.clone());
        }
        if v["description"].as_str().is_some_and(rule_id) {
            cites.push(path);
        }
    };
    for t in types {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || ["String", "Int", "Boolean", "ID", "Float"].contains(&name) {
            continue;
        }
        check(name.to_owned(), t);
        for f in t["fields"].as_array().into_iter().flatten() {
            let field = format!("{name}.{}", f["name"].as_str().unwrap_or_default());
            for a in f["args"].as_array().into_iter().flatten() {
                check(
                    format!("{field}({})", a["name"].as_str().unwrap_or_default()),
                    a,
                );
            }
            check(field, f);
        }
        for f in t["inputFields"].as_array().into_iter().flatten() {
            check(
                format!("{name}.{}", f["name"].as_str().unwrap_or_default()),
                f,
            );
        }
        for v in t["enumValues"].as_array().into_iter().flatten() {
            check(
                format!("{name}.{}", v["name"].as_str().unwrap_or_default()),
                v,
            );
        }
    }
    assert!(
        types.len() > 60,
        "the walk found the types ({})",
        types.len()
    );
    assert!(missing.is_empty(), "undescribed:\n{}", missing.join("\n"));
    assert!(
        cites.is_empty(),
        "descriptions citing internal rule ids (R1–R20), which mean nothing to an API's reader:\n{}",
        cites.join("\n")
    );
}

/// `(R12)`, `(R9, R14)`: an internal rule id in a description.
fn regex_lite_rule_id(text: &str) -> bool {
    text.match_indices("(R").any(|(at, _)| {
        text[at + 2..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Every object type with an `id` implements `Node`, so `node(id:)` and `nodes(ids:)` refetch
/// it and a normalised client cache can key it.
#[tokio::test]
async fn every_object_with_an_id_is_a_node() {
    let schema = dirgate::graphql::introspection().await;
    let types = schema["__schema"]["types"].as_array().expect("types");
    let mut not_nodes = Vec::new();
    let mut nodes = 0;
    for t in types.iter().filter(|t| t["kind"] == "OBJECT") {
        let has_id = t["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|f| f["name"] == "id" && named(&f["type"]).0 == "ID");
        let is_node = t["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["name"] == "Node");
        nodes += usize::from(is_node);
        if has_id && !is_node {
            not_nodes.push(t["name"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(nodes >= 8, "the walk found the nodes ({nodes})");
    assert!(
        not_nodes.is_empty(),
        "types with an id that are not a Node: {not_nodes:?}"
    );
}

#[test]
fn the_rule_id_finder_sees_rule_ids_only() {
    assert!(regex_lite_rule_id("assigned automatically (R12)."));
    assert!(regex_lite_rule_id("archived (R9, R14)"));
    assert!(!regex_lite_rule_id("a user (Role: admin) (RFC 3339)"));
}

/// The plain lists the schema may have, each with what bounds it; any other list field is a
/// list that may grow with the directory and must be a connection (paged, counted).
const BOUNDED_LISTS: &[(&str, &str)] = &[
    ("Query.nodes", "at most 100 ids a call"),
    (
        "Query.webhookEndpoints",
        "at most 100 endpoints (webhooks::MAX_ENDPOINTS)",
    ),
    ("WebhookEndpoint.deliveries", "`first` is 0 to 100 attempts"),
    (
        "WebhookEndpoint.types",
        "a subset of DirectoryEventType's values",
    ),
    (
        "User.aliases",
        "at most 100 a user (providers::clean::MAX_ALIASES)",
    ),
    ("Integration.grantedScopes", "the scopes dirgate asks for"),
    (
        "IntegrationScope.groupIds",
        "at most 50 (providers::scope::MAX_SCOPE_ITEMS)",
    ),
    (
        "IntegrationScope.orgUnitPaths",
        "at most 50 (providers::scope::MAX_SCOPE_ITEMS)",
    ),
    ("UserError.field", "a path in the mutation's own input"),
    ("DirectoryGroupPage.nodes", "`first` is 1 to 100"),
    ("DirectoryOrgUnitPage.nodes", "`first` is 1 to 100"),
];

/// The list fields of `types` (as `Type.field`) that are neither a connection's `edges` or
/// `nodes`, nor a payload's `userErrors`, nor in `bounded`.
fn unbounded_lists(types: &[serde_json::Value], bounded: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    for t in types.iter().filter(|t| t["kind"] == "OBJECT") {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") {
            continue;
        }
        for f in t["fields"].as_array().into_iter().flatten() {
            let mut ty = &f["type"];
            if ty["kind"] == "NON_NULL" {
                ty = &ty["ofType"];
            }
            if ty["kind"] != "LIST" {
                continue;
            }
            let field = f["name"].as_str().unwrap_or_default();
            let paged = name.ends_with("Connection") && (field == "edges" || field == "nodes");
            let errors = name.ends_with("Payload") && field == "userErrors";
            let path = format!("{name}.{field}");
            if !paged && !errors && !bounded.iter().any(|(p, _)| *p == path) {
                found.push(path);
            }
        }
    }
    found
}

/// No plain list field may grow with the directory: a user in 3,000 groups is a page of
/// them, not 3,000 at once. Every list that is not a connection's is named above with its
/// bound.
#[tokio::test]
async fn no_plain_list_grows_with_the_directory() {
    let schema = dirgate::graphql::introspection().await;
    let types = schema["__schema"]["types"].as_array().expect("types");
    assert_eq!(
        unbounded_lists(types, BOUNDED_LISTS),
        Vec::<String>::new(),
        "plain lists that are neither connections nor bounded"
    );
    // The walk sees a list field: without the allowances every bounded list is reported.
    let all = unbounded_lists(types, &[]);
    for (path, _) in BOUNDED_LISTS {
        assert!(
            all.contains(&path.to_string()),
            "{path} is no longer a list"
        );
    }
    // And the old shape of `User.groups` would be caught.
    let old = serde_json::json!([{ "kind": "OBJECT", "name": "User", "fields": [
        { "name": "groups", "type": { "kind": "NON_NULL", "ofType": { "kind": "LIST",
          "ofType": { "kind": "NON_NULL", "ofType": { "kind": "OBJECT", "name": "Group" } } } } }
    ] }]);
    assert_eq!(
        unbounded_lists(old.as_array().unwrap(), BOUNDED_LISTS),
        ["User.groups"]
    );
}
