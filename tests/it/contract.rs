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
        "integrations(first: Int, after: String, kind: DirectoryKind, status: IntegrationStatus): IntegrationConnection!",
        "integration(id: ID!): Integration",
        "users(first: Int, after: String, filter: UserFilter): UserConnection!",
        "user(id: ID!): User",
        "groups(first: Int, after: String, filter: GroupFilter): GroupConnection!",
        "group(id: ID!): Group",
        "devices(first: Int, after: String, filter: DeviceFilter): DeviceConnection!",
        "device(id: ID!): Device",
        "syncRun(id: ID!): SyncRun",
        "registerDevice(input: RegisterDeviceInput!): Device!",
        "assignDeviceUser(deviceId: ID!, userId: ID!): Device!",
        "unassignDeviceUser(deviceId: ID!): Device!",
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
