//! Creates the stack's tables, queues and bucket, for a local emulator (tests and
//! `make demo`). In AWS, `template.yaml` creates them; both read [`Stack::tables`].

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use super::Clients;
use crate::stack::{Stack, TableSpec};

/// Creates whatever of the stack does not exist yet.
pub async fn provision(clients: &Clients, stack: &Stack) -> anyhow::Result<()> {
    let existing = clients.dynamodb.list_tables().send().await?;
    let existing = existing.table_names();
    for table in stack.tables() {
        if !existing.contains(&table.name) {
            create_table(&clients.dynamodb, &table).await?;
        }
    }
    let dlq = clients
        .sqs
        .create_queue()
        .queue_name(&stack.dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await?;
    let dlq_arn = clients
        .sqs
        .get_queue_attributes()
        .queue_url(dlq.queue_url().unwrap_or_default())
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    clients
        .sqs
        .create_queue()
        .queue_name(&stack.queue_name)
        .attributes(QueueAttributeName::VisibilityTimeout, "960")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string(),
        )
        .send()
        .await?;
    match clients
        .s3
        .create_bucket()
        .bucket(&stack.reports_bucket)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
        Err(e) => return Err(e.into()),
    }
    // SES refuses to send from an unverified identity; the emulator honours that too.
    clients
        .ses
        .create_email_identity()
        .email_identity(&stack.sender)
        .send()
        .await
        .ok();
    // The run summaries' topic (CreateTopic returns the existing one by that name).
    if let Some(name) = stack
        .alerts_topic_arn
        .rsplit(':')
        .next()
        .filter(|n| !n.is_empty())
    {
        clients.sns.create_topic().name(name).send().await?;
    }
    Ok(())
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, t: &TableSpec) -> anyhow::Result<()> {
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let mut attrs = vec![t.partition_key];
    attrs.extend(t.sort_key);
    for i in &t.indexes {
        attrs.push(i.partition_key);
        attrs.extend(i.sort_key);
    }
    attrs.sort_unstable();
    attrs.dedup();
    let mut req = ddb
        .create_table()
        .table_name(&t.name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(t.partition_key, KeyType::Hash)?);
    if let Some(sk) = t.sort_key {
        req = req.key_schema(key(sk, KeyType::Range)?);
    }
    for a in attrs {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(a)
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        );
    }
    for i in &t.indexes {
        let mut gsi = GlobalSecondaryIndex::builder()
            .index_name(i.name)
            .key_schema(key(i.partition_key, KeyType::Hash)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            );
        if let Some(sk) = i.sort_key {
            gsi = gsi.key_schema(key(sk, KeyType::Range)?);
        }
        req = req.global_secondary_indexes(gsi.build()?);
    }
    req.send().await?;
    if let Some(ttl) = t.ttl_attribute {
        ddb.update_time_to_live()
            .table_name(&t.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(ttl)
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}
