use super::*;

#[test]
fn a_run_lists_as_many_keys_as_fit_in_an_item() {
    let few: Vec<String> = (0..10).map(|i| format!("in/f_{i}.csv")).collect();
    assert_eq!(listed(&few).len(), 10);
    let many: Vec<String> = (0..100_000)
        .map(|i| format!("folder/file_{i:08}.csv"))
        .collect();
    let n = listed(&many).len();
    assert!(n > 5_000 && n < 100_000, "{n}");
    assert!(listed(&many).iter().map(|k| k.len() + 4).sum::<usize>() <= RUN_FILES_BUDGET);
}

#[test]
fn the_longest_key_config_allows_fits_the_sort_key() {
    let key = "k".repeat(crate::model::ledger::MAX_FILE_KEY_BYTES);
    assert_eq!(file_sk(&key).len(), 1024, "DynamoDB's sort key limit");
}
