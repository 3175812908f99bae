//! The parse errors of priorities, task types and statuses, word for word (API 400 bodies and CLI
//! errors show them).

use super::*;

#[test]
fn parse_errors_quote_the_value_and_list_the_spellings() {
    let e = "P9".parse::<Priority>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "`P9` is not a priority (expected P0, P1, P2 or P3)"
    );
    let e = "launch".parse::<TaskType>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "`launch` is not a task type (expected one of deploy, deployment, redeploy, promote, \
         rollback, cancel, check, release, noop)"
    );
    let e = "done".parse::<TaskStatus>().unwrap_err();
    assert_eq!(e.to_string(), "`done` is not a task status");
    assert_eq!(" p1 ".parse::<Priority>(), Ok(Priority::P1));
    assert_eq!("Deployment".parse::<TaskType>(), Ok(TaskType::Deploy));
}
